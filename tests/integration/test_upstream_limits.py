"""Both upstream HTTP clients against a raw socket server that sends what no fake would: one
header line past the limit, bodies past it with every kind of framing, and a declared length
past it whose body never comes (refused on the head, not after a wait)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gateway.errors import UpstreamError
from gateway.settings import UpstreamSettings
from gateway.upstream.lean import LeanProvider
from gateway.upstream.provider import OpenAICompatibleProvider, Provider, create_http_session
from gateway.upstream.routing import Upstream

LIMIT = 64 * 1024
SETTINGS = UpstreamSettings(
    read_timeout=5.0, total_timeout=10.0, max_body_bytes=LIMIT, max_stream_bytes=LIMIT
)
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
BIG = b'{"x": "' + b"a" * (2 * LIMIT) + b'"}'
ANSWERS = {
    "one huge header": OK + b"X-Big: " + b"h" * (3 * LIMIT) + b"\r\nContent-Length: 2\r\n\r\n{}",
    "content-length": OK + b"Content-Length: %d\r\n\r\n" % len(BIG) + BIG,
    "until eof": OK + b"Connection: close\r\n\r\n" + BIG,
    "chunked": OK
    + b"Transfer-Encoding: chunked\r\n\r\n"
    + b"".join(b"%x\r\n" % 4096 + BIG[i : i + 4096] + b"\r\n" for i in range(0, 4096 * 33, 4096))
    + b"0\r\n\r\n",
    "a declared length, no body": OK + b"Content-Length: %d\r\n\r\n" % (LIMIT + 1),
}


async def _serve(answer: bytes) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        if b"no body" not in answer:
            writer.close()
        else:
            await reader.read()  # hold the connection open: the body never comes

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture(params=["lean", "aiohttp"])
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[Provider]:
    if request.param == "lean":
        lean = LeanProvider(SETTINGS)
        yield lean
        await lean.close()
    else:
        session = create_http_session(SETTINGS)
        yield OpenAICompatibleProvider(session, SETTINGS)
        await session.close()


@pytest.mark.parametrize("answer", list(ANSWERS))
@pytest.mark.parametrize("call", ["complete", "stream"])
async def test_an_answer_past_the_limits_is_refused_as_too_large(
    provider: Provider, answer: str, call: str
) -> None:
    server, port = await _serve(ANSWERS[answer])
    upstream = Upstream("raw", f"http://127.0.0.1:{port}/v1", "sk-raw")

    async def read_stream() -> bytes:
        stream = await provider.stream(upstream, "/chat/completions", b"{}")
        try:
            return b"".join([piece async for piece in stream.chunks()])
        finally:
            stream.close()

    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "complete": lambda: provider.complete(upstream, "/chat/completions", b"{}"),
        "stream": read_stream,
    }
    try:
        with pytest.raises(UpstreamError) as info:
            await calls[call]()
    finally:
        server.close()
    assert "answer was too large" in info.value.message
    setting = "HEADER" if answer == "one huge header" else "STREAM" if call == "stream" else "BODY"
    assert f"SLUICE_UPSTREAM_MAX_{setting}_BYTES" in info.value.message
