"""The official openai SDK through the gateway, against the fake upstream, on both databases."""

from __future__ import annotations

import asyncio

import openai
import pytest

from gateway.tokens.counting import count_text
from sluice_devtools.fake_upstream import FakeUpstreamThread
from tests.conftest import UPSTREAM_KEY, RunningGateway


def test_chat_non_streamed_is_logged_with_exact_usage(gateway: RunningGateway) -> None:
    client = gateway.openai()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "#words=7"}],
        extra_headers={
            "X-Sluice-User": "alice",
            "X-Sluice-Session": "s-1",
            "X-Sluice-Tag-Feature": "search",
            "X-Sluice-Request-Id": "req-abc-1",
        },
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "w1 w2 w3 w4 w5 w6 w7"
    assert raw.headers["x-sluice-request-id"] == "req-abc-1"
    [row] = gateway.wait_for_rows(1)
    assert row["request_id"] == "req-abc-1"
    assert row["status_code"] == 200
    assert row["model_requested"] == "gpt-4o-mini"
    assert row["model_served"] == "gpt-4o-mini"
    assert row["upstream"] == "default"
    assert row["streamed"] is False
    assert completion.usage is not None
    assert row["prompt_tokens"] == completion.usage.prompt_tokens
    assert row["completion_tokens"] == completion.usage.completion_tokens
    assert row["total_tokens"] == completion.usage.total_tokens
    assert row["user"] == "alice"
    assert row["session"] == "s-1"
    assert row["tags"] == {"feature": "search"}
    assert row["is_test_run"] is False
    assert row["latency_ms"] > 0
    assert row["request_body"]["messages"] == [{"role": "user", "content": "#words=7"}]
    assert row["response_body"]["choices"][0]["message"]["content"] == "w1 w2 w3 w4 w5 w6 w7"


def test_stream_passes_through_and_hides_usage_chunk(
    gateway: RunningGateway, fake_upstream: FakeUpstreamThread
) -> None:
    client = gateway.openai()
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "#words=5"}],
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "w1 w2 w3 w4 w5"
    # The gateway asked upstream for usage; a client that did not ask never sees the chunk.
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    [row] = gateway.wait_for_rows(1)
    assert row["streamed"] is True
    assert row["completion_tokens"] == count_text("gpt-4o-mini", text)
    assert row["usage_estimated"] is False
    assert row["ttft_ms"] is not None and row["ttft_ms"] <= row["latency_ms"]
    assert row["response_body"]["choices"][0]["message"]["content"] == text
    sent = [r for r in fake_upstream.requests if "#words=5" in str(r.body)]
    assert sent[-1].body["stream_options"] == {"include_usage": True}


def test_stream_with_usage_requested_keeps_usage_chunk(gateway: RunningGateway) -> None:
    client = gateway.openai()
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "#words=3"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1
    assert usage[0].completion_tokens == count_text("gpt-4o-mini", "w1 w2 w3")
    [row] = gateway.wait_for_rows(1)
    assert row["prompt_tokens"] == usage[0].prompt_tokens


async def test_async_client_embeddings_and_models(gateway: RunningGateway) -> None:
    async with gateway.async_openai() as client:
        vectors = await client.embeddings.create(model="text-embedding-3-small", input=["a", "b c"])
        assert [len(item.embedding) for item in vectors.data] == [8, 8]
        models = [model.id async for model in client.models.list()]
        assert "gpt-4o-mini" in models
        streamed = await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hey"}], stream=True
        )
        parts = [c.choices[0].delta.content or "" async for c in streamed if c.choices]
    assert "".join(parts) == "Hello! You said: hey"
    rows = await asyncio.to_thread(gateway.wait_for_rows, 2)
    embedding_row = next(r for r in rows if r["endpoint"] == "embeddings")
    assert embedding_row["prompt_tokens"] == vectors.usage.prompt_tokens
    # vectors are summarised, not stored
    assert embedding_row["response_body"]["data"] == [
        {"index": 0, "dimensions": 8},
        {"index": 1, "dimensions": 8},
    ]


def test_upstream_key_is_sent_and_client_key_is_not(
    gateway: RunningGateway, fake_upstream: FakeUpstreamThread
) -> None:
    key = gateway.create_key()
    gateway.openai(key).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "canary-check"}]
    )
    received = [r for r in fake_upstream.requests if "canary-check" in str(r.body)]
    assert received[-1].api_key == UPSTREAM_KEY
    assert key not in str(received[-1].headers)


def test_wrong_and_missing_keys_get_401(gateway: RunningGateway) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        gateway.openai("sk-sluice-not-a-real-key").chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.code == "invalid_api_key"
    response = gateway.http.post("/v1/chat/completions", json={"model": "gpt-4o-mini"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
