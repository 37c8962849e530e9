"""The lean upstream client against the fake upstream's faults, as the proxy would meet them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest
import uvloop

from gateway.errors import UpstreamError, UpstreamTimeout
from gateway.settings import UpstreamSettings
from gateway.upstream.lean import LeanProvider
from gateway.upstream.routing import Upstream
from sluice_devtools.fake_upstream import FakeUpstream, start_fake_upstream

KEY = "sk-upstream-lean"


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with await start_fake_upstream() as running:
        yield running


@pytest.fixture
async def lean() -> AsyncIterator[LeanProvider]:
    provider = LeanProvider(UpstreamSettings(read_timeout=1.0, total_timeout=5.0))
    yield provider
    await provider.close()


def _upstream(fake: FakeUpstream) -> Upstream:
    return Upstream("fake", fake.base_url, KEY)


def _chat(text: str, stream: bool = False) -> bytes:
    body: dict[str, Any] = {"model": "fake-chat", "messages": [{"role": "user", "content": text}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return msgspec.json.encode(body)


async def test_completion_round_trip(fake: FakeUpstream, lean: LeanProvider) -> None:
    reply = await lean.complete(_upstream(fake), "/chat/completions", _chat("#words=5"))
    assert reply.status == 200
    answer = msgspec.json.decode(reply.body)
    assert answer["choices"][0]["message"]["content"] == "w1 w2 w3 w4 w5"
    assert answer["usage"]["completion_tokens"] > 0
    assert fake.requests[-1].api_key == KEY
    assert "accept-encoding" not in fake.requests[-1].headers


async def test_models_listing(fake: FakeUpstream, lean: LeanProvider) -> None:
    reply = await lean.get(_upstream(fake), "/models")
    assert reply.status == 200
    assert "fake-chat" in {m["id"] for m in msgspec.json.decode(reply.body)["data"]}


async def test_stream_arrives_in_pieces_and_ends_with_done(
    fake: FakeUpstream, lean: LeanProvider
) -> None:
    stream = await lean.stream(
        _upstream(fake), "/chat/completions", _chat("#words=4 #delay=20", True)
    )
    assert stream.status == 200
    pieces = [piece async for piece in stream.chunks()]
    stream.close()
    assert len(pieces) > 3
    text = b"".join(pieces)
    assert text.rstrip().endswith(b"data: [DONE]")
    assert b'"usage"' in text
    assert lean.open_connections == 1  # read to the end: pooled, not dropped


@pytest.mark.parametrize("status", [500, 429])
async def test_http_errors_pass_through(
    fake: FakeUpstream, lean: LeanProvider, status: int
) -> None:
    reply = await lean.complete(_upstream(fake), "/chat/completions", _chat(f"#fault={status}"))
    assert reply.status == status
    assert "error" in msgspec.json.decode(reply.body)
    if status == 429:
        assert reply.headers["retry-after"] == "1"


async def test_error_status_on_a_stream_is_readable(fake: FakeUpstream, lean: LeanProvider) -> None:
    stream = await lean.stream(_upstream(fake), "/chat/completions", _chat("#fault=500", True))
    try:
        assert stream.status == 500
        assert b"error" in await stream.read()
    finally:
        stream.close()


async def test_reset_is_502(fake: FakeUpstream, lean: LeanProvider) -> None:
    with pytest.raises(UpstreamError):
        await lean.complete(_upstream(fake), "/chat/completions", _chat("#fault=reset"))
    # The pool recovers: the next call gets an answer.
    reply = await lean.complete(_upstream(fake), "/chat/completions", _chat("#words=1"))
    assert reply.status == 200


async def test_reset_mid_stream_is_502_after_the_first_pieces(
    fake: FakeUpstream, lean: LeanProvider
) -> None:
    stream = await lean.stream(
        _upstream(fake), "/chat/completions", _chat("#fault=reset #words=6", True)
    )
    received = b""
    with pytest.raises(UpstreamError, match="mid-answer"):
        async for piece in stream.chunks():
            received += piece
    stream.close()
    assert received.startswith(b"data: ")
    assert lean.open_connections == 0


async def test_malformed_body_passes_as_200(fake: FakeUpstream, lean: LeanProvider) -> None:
    reply = await lean.complete(_upstream(fake), "/chat/completions", _chat("#fault=malformed"))
    assert reply.status == 200
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(reply.body)


async def test_silent_upstream_is_504(fake: FakeUpstream, lean: LeanProvider) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(UpstreamTimeout):
        await lean.complete(_upstream(fake), "/chat/completions", _chat("#fault=timeout #sleep=5"))
    assert loop.time() - started < 2.5
    assert lean.open_connections == 0


async def test_slow_stream_within_the_read_timeout_completes(
    fake: FakeUpstream, lean: LeanProvider
) -> None:
    # 12 chunks 300 ms apart: 3.6 s in all, over the 1 s read timeout but never silent for 1 s.
    stream = await lean.stream(
        _upstream(fake), "/chat/completions", _chat("#words=10 #delay=300", True)
    )
    text = await stream.read()
    stream.close()
    assert text.rstrip().endswith(b"data: [DONE]")


async def test_many_concurrent_calls(fake: FakeUpstream) -> None:
    lean = LeanProvider(UpstreamSettings(max_connections=8))
    replies = await asyncio.gather(
        *(
            lean.complete(_upstream(fake), "/chat/completions", _chat(f"#words={i % 7 + 1}"))
            for i in range(64)
        )
    )
    assert all(reply.status == 200 for reply in replies)
    assert lean.open_connections <= 8
    await lean.close()


@pytest.mark.parametrize(
    "case",
    [
        test_completion_round_trip,
        test_stream_arrives_in_pieces_and_ends_with_done,
        test_reset_mid_stream_is_502_after_the_first_pieces,
        test_silent_upstream_is_504,
    ],
    ids=lambda case: case.__name__[5:],
)
def test_under_uvloop(case: Callable[[FakeUpstream, LeanProvider], Awaitable[None]]) -> None:
    """Production runs on uvloop: the same calls on its loop."""

    async def main() -> None:
        async with await start_fake_upstream() as fake:
            lean = LeanProvider(UpstreamSettings(read_timeout=1.0, total_timeout=5.0))
            try:
                await case(fake, lean)
            finally:
                await lean.close()

    uvloop.run(main())
