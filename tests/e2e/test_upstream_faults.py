"""Every upstream fault the fake can produce, seen through the gateway with the openai SDK."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory, RunningGateway
from tests.e2e.budgets_support import create_budget, new_key, settled_budget


def _ask(client: openai.OpenAI, text: str, **kwargs: object) -> object:
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}], **kwargs
    )


def test_upstream_5xx_and_4xx_keep_status_and_body(gateway: RunningGateway) -> None:
    client = gateway.openai()
    with pytest.raises(openai.InternalServerError) as server_error:
        _ask(client, "#fault=500")
    assert server_error.value.status_code == 500
    assert "Fake fault 500" in str(server_error.value.body)
    with pytest.raises(openai.BadRequestError):
        _ask(client, "#fault=400")
    rows = gateway.wait_for_rows(2)
    assert sorted(r["status_code"] for r in rows) == [400, 500]
    assert all(r["error_code"] for r in rows)


def test_upstream_429_passes_retry_after(gateway: RunningGateway) -> None:
    response = gateway.http.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.create_key()}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "#fault=429"}]},
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert "error" in response.json()


@pytest.mark.parametrize("stream", [False, True])
def test_unreachable_upstream_is_502(
    start_gateway: GatewayFactory, sqlite_url: str, stream: bool
) -> None:
    gateway = start_gateway(sqlite_url, SLUICE_UPSTREAM_BASE_URL="http://127.0.0.1:9/v1")
    with pytest.raises(openai.APIStatusError) as info:
        _ask(gateway.openai(), "hi", stream=stream)
    assert info.value.status_code == 502
    assert info.value.code == "upstream_error"


def test_upstream_timeout_is_504(start_gateway: GatewayFactory, sqlite_url: str) -> None:
    gateway = start_gateway(sqlite_url, SLUICE_UPSTREAM_READ_TIMEOUT="0.3")
    with pytest.raises(openai.APIStatusError) as info:
        _ask(gateway.openai(), "#fault=timeout #sleep=3")
    assert info.value.status_code == 504
    assert info.value.code == "upstream_timeout"
    [row] = gateway.wait_for_rows(1)
    assert row["status_code"] == 504


def test_connection_reset_and_garbage_are_502(sqlite_gateway: RunningGateway) -> None:
    client = sqlite_gateway.openai()
    for fault in ("#fault=reset", "#fault=malformed"):
        with pytest.raises(openai.APIStatusError) as info:
            _ask(client, fault)
        assert info.value.status_code == 502


@pytest.mark.parametrize("fault", ["#fault=reset", "#fault=malformed"])
def test_stream_broken_mid_way_ends_with_an_error_event(
    sqlite_gateway: RunningGateway, fault: str
) -> None:
    stream = _ask(sqlite_gateway.openai(), f"{fault} #words=6", stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in stream:  # type: ignore[attr-defined]
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    [row] = sqlite_gateway.wait_for_rows(1)
    assert row["error_code"] == "upstream_error"
    assert row["client_disconnected"] is False
    # billed from what was sent and received, never zero
    assert row["usage_estimated"] is True
    assert row["prompt_tokens"] > 0
    assert row["response_body"]["choices"][0]["message"]["content"] == "".join(received)


def test_stream_without_usage_is_estimated_and_flagged(sqlite_gateway: RunningGateway) -> None:
    chunks = list(_ask(sqlite_gateway.openai(), "#fault=nousage #words=4", stream=True))  # type: ignore[call-overload]
    assert chunks
    [row] = sqlite_gateway.wait_for_rows(1)
    assert row["usage_estimated"] is True
    assert row["completion_tokens"] > 0


def test_client_disconnect_mid_stream_keeps_partial_output(
    gateway: RunningGateway,
) -> None:
    key = gateway.create_key()
    body = {
        "model": "gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "user", "content": "#words=200 #delay=20"}],
    }
    received = b""
    with (
        httpx.Client(base_url=gateway.base_url, timeout=10) as client,
        client.stream(
            "POST", "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        ) as response,
    ):
        for piece in response.iter_raw():
            received += piece
            if received.count(b"data: ") >= 5:
                break
    [row] = gateway.wait_for_rows(1, timeout=15)
    assert row["client_disconnected"] is True
    assert row["usage_estimated"] is True
    content = row["response_body"]["choices"][0]["message"]["content"]
    assert content.startswith("w1 w2")
    assert len(content.split()) < 200
    assert row["completion_tokens"] > 0
    assert row["prompt_tokens"] > 0


# -- answers too large: both HTTP clients, a 502 that says so, nothing stored past the limit --

CLIENTS = ["lean", "aiohttp"]


def _too_large(info: pytest.ExceptionInfo[openai.APIStatusError]) -> None:
    assert info.value.status_code == 502
    assert info.value.code == "upstream_error"
    assert "answer was too large" in info.value.message


@pytest.mark.parametrize("client", CLIENTS)
def test_a_body_past_the_limit_is_a_502_and_is_not_stored(
    start_gateway: GatewayFactory, sqlite_url: str, client: str
) -> None:
    gateway = start_gateway(
        sqlite_url, SLUICE_UPSTREAM_CLIENT=client, SLUICE_UPSTREAM_MAX_BODY_BYTES="65536"
    )
    sdk = gateway.openai()
    fits = _ask(sdk, "#reply=small\n#pad=30000")
    assert fits.choices[0].message.content.endswith("x" * 30000)  # type: ignore[attr-defined]
    with pytest.raises(openai.APIStatusError) as info:
        _ask(sdk, "#reply=big\n#pad=300000")
    _too_large(info)
    assert "SLUICE_UPSTREAM_MAX_BODY_BYTES" in info.value.message
    with pytest.raises(openai.APIStatusError) as info:  # four 4096-dimension vectors: ~87 KB
        sdk.embeddings.create(model="fake-embed", input=["a", "b", "c", "d"], dimensions=4096)
    _too_large(info)
    rows = gateway.wait_for_rows(3)
    assert [row["status_code"] for row in rows] == [502, 502, 200]
    for row in rows[:2]:
        assert row["error_code"] == "upstream_error"
        assert "answer was too large" in row["response_body"]["error"]["message"]
        assert len(str(row["response_body"])) < 1000


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("stream", [False, True])
def test_headers_past_the_limit_are_a_502(
    start_gateway: GatewayFactory, sqlite_url: str, client: str, stream: bool
) -> None:
    gateway = start_gateway(sqlite_url, SLUICE_UPSTREAM_CLIENT=client)
    sdk = gateway.openai()
    assert _ask(sdk, "#headers=16000", stream=stream)  # 16 KiB of headers: fine
    with pytest.raises(openai.APIStatusError) as info:
        _ask(sdk, "#headers=200000", stream=stream)  # past the default 64 KiB
    _too_large(info)
    assert "SLUICE_UPSTREAM_MAX_HEADER_BYTES" in info.value.message


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("directive", "setting"),
    [
        ("#words=3000", "SLUICE_UPSTREAM_MAX_STREAM_BYTES"),
        ("#pad=50000", "SLUICE_UPSTREAM_MAX_EVENT_BYTES"),
    ],
)
def test_a_stream_past_its_limits_ends_with_an_error_event(
    start_gateway: GatewayFactory, sqlite_url: str, client: str, directive: str, setting: str
) -> None:
    gateway = start_gateway(
        sqlite_url,
        SLUICE_UPSTREAM_CLIENT=client,
        SLUICE_UPSTREAM_MAX_STREAM_BYTES="65536",
        SLUICE_UPSTREAM_MAX_EVENT_BYTES="16384",
    )
    received: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in _ask(gateway.openai(), directive, stream=True):  # type: ignore[attr-defined]
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "answer was too large" in info.value.message
    assert setting in info.value.message
    [row] = gateway.wait_for_rows(1)
    assert row["error_code"] == "upstream_error"
    stored = row["response_body"]["choices"][0]["message"]["content"]
    assert stored == "".join(received)
    assert len(stored) < 65536


@pytest.mark.parametrize("client", CLIENTS)
def test_a_stream_refused_with_a_huge_error_body_releases_its_hold(
    start_gateway: GatewayFactory, sqlite_url: str, client: str
) -> None:
    gateway = start_gateway(
        sqlite_url, SLUICE_UPSTREAM_CLIENT=client, SLUICE_UPSTREAM_MAX_STREAM_BYTES="65536"
    )
    key_id, secret = new_key(gateway)
    budget = create_budget(
        gateway.admin, scope="key", scope_value=key_id, period="daily", limit_usd=1
    )
    with pytest.raises(openai.APIStatusError) as info:
        _ask(gateway.openai(secret), "#fault=500 #pad=300000", stream=True, max_tokens=10)
    _too_large(info)
    assert settled_budget(gateway.admin, budget["id"], timeout=5)["spent_usd"] == 0
