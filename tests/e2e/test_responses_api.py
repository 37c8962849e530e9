"""The Responses API through the gateway with the official openai SDK, against the fake."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import openai
import pytest

from gateway.tokens.counting import count_text
from gateway.tokens.responses_input import count_responses_input
from sluice_devtools.fake_upstream import FakeUpstreamThread
from tests.conftest import GatewayFactory, RunningGateway
from tests.e2e.budgets_support import create_budget, expected_cost, settled_budget, usd
from tests.e2e.evaluations_support import attach, wait_for_evaluations
from tests.e2e.prompts_support import make_prompt, set_label

MODEL = "gpt-4o-mini"


def _marker(name: str) -> str:
    """Unique per run: the fake upstream records every test's requests."""
    return f"{name}-{uuid.uuid4().hex[:10]}"


def test_create_is_answered_billed_and_logged(gateway: RunningGateway) -> None:
    client = gateway.openai()
    text = f"{_marker('create')} #words=6"
    raw = client.responses.with_raw_response.create(
        model=MODEL, input=text, instructions="Be brief.", extra_headers={"X-Sluice-User": "ann"}
    )
    response = raw.parse()
    assert response.output_text == "w1 w2 w3 w4 w5 w6"
    assert response.id.startswith("resp_")
    assert response.usage is not None
    prompt = count_responses_input(MODEL, "Be brief.", text, None)
    assert response.usage.input_tokens == prompt
    assert raw.headers["x-sluice-cost-usd"] == str(expected_cost(prompt, 6 * 2).normalize())
    [row] = gateway.wait_for_rows(1, user="ann")
    assert row["endpoint"] == "responses"
    assert (row["status_code"], row["streamed"], row["upstream"]) == (200, False, "default")
    assert row["upstream_response_id"] == response.id
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, 12)
    assert row["usage_estimated"] is False
    assert usd(row["cost_usd"]) == expected_cost(prompt, 12)
    assert row["request_body"]["input"] == text
    assert row["response_body"]["output"][0]["content"][0]["text"] == "w1 w2 w3 w4 w5 w6"


def test_stream_passes_typed_events_and_ends_with_usage(
    gateway: RunningGateway, fake_upstream: FakeUpstreamThread
) -> None:
    client = gateway.openai()
    text = f"{_marker('stream')} #words=5"
    with client.responses.stream(
        model=MODEL, input=text, extra_headers={"X-Sluice-User": "streamer"}
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds.count("response.output_text.delta") == 5
    assert kinds[-1] == "response.completed"
    assert final.output_text == "w1 w2 w3 w4 w5"
    assert final.usage is not None and final.usage.output_tokens == count_text(
        MODEL, final.output_text
    )
    [row] = gateway.wait_for_rows(1, user="streamer")
    assert row["streamed"] is True and row["client_disconnected"] is False
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        final.usage.input_tokens,
        final.usage.output_tokens,
    )
    assert row["usage_estimated"] is False
    assert row["ttft_ms"] is not None
    assert row["response_body"]["id"] == final.id
    [sent] = [r for r in fake_upstream.requests if text in str(r.body)]
    assert "stream_options" not in sent.body  # Responses streams always end with their usage


def test_a_tool_call_comes_back_and_is_logged(sqlite_gateway: RunningGateway) -> None:
    client = sqlite_gateway.openai()
    tools = [
        {
            "type": "function",
            "name": "lookup",
            "description": "Look a thing up.",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        }
    ]
    response = client.responses.create(
        model=MODEL,
        input=[{"role": "user", "content": "#call=lookup"}],
        tools=tools,  # type: ignore[arg-type]
        extra_headers={"X-Sluice-User": "tooler"},
    )
    [call] = response.output
    assert call.type == "function_call" and call.name == "lookup"
    assert call.arguments == '{"ok":true}'
    assert response.usage is not None
    assert response.usage.input_tokens == count_responses_input(
        MODEL, None, [{"role": "user", "content": "#call=lookup"}], tools
    )
    [row] = sqlite_gateway.wait_for_rows(1, user="tooler")
    assert row["response_body"]["output"][0]["name"] == "lookup"
    assert row["request_body"]["tools"][0]["name"] == "lookup"


def test_a_prompt_version_becomes_instructions_input_and_params(
    sqlite_gateway: RunningGateway, fake_upstream: FakeUpstreamThread
) -> None:
    gateway = sqlite_gateway
    version = {
        "messages": [
            {"role": "system", "content": "You answer about {{topic}}."},
            {"role": "user", "content": "Example question"},
            {"role": "assistant", "content": "Example answer"},
        ],
        "variables": ["topic"],
        "params": {"max_tokens": 77, "temperature": 0.2},
    }
    make_prompt(gateway, "resp-helper", version)
    set_label(gateway, "resp-helper", "production", 1)
    client = gateway.openai()
    text = f"{_marker('prompted')} #words=2"
    raw = client.responses.with_raw_response.create(
        model=MODEL,
        input=text,
        instructions="Client's own note.",
        temperature=0.9,
        extra_headers={
            "X-Sluice-Prompt": "resp-helper",
            "X-Sluice-Prompt-Variables": '{"topic": "tides"}',
        },
    )
    assert raw.parse().output_text == "w1 w2"
    assert raw.headers["x-sluice-prompt-version"] == "resp-helper@1"
    [sent] = [r for r in fake_upstream.requests if text in str(r.body)]
    assert sent.body["instructions"] == "You answer about tides.\n\nClient's own note."
    assert sent.body["input"] == [
        {"role": "user", "content": "Example question"},
        {"role": "assistant", "content": "Example answer"},
        {"role": "user", "content": text},
    ]
    assert sent.body["max_output_tokens"] == 77 and "max_tokens" not in sent.body
    assert sent.body["temperature"] == 0.2  # the version's params win
    [row] = gateway.wait_for_rows(1, prompt="resp-helper")
    assert (row["prompt_slug"], row["prompt_version"]) == ("resp-helper", 1)


def test_production_evaluations_score_the_output_text(sqlite_gateway: RunningGateway) -> None:
    gateway = sqlite_gateway
    make_prompt(gateway, "resp-eval", {"messages": [{"role": "system", "content": "Count."}]})
    set_label(gateway, "resp-eval", "production", 1)
    attach(gateway, "resp-eval", 1, {"evaluator_key": "regex", "config": {"pattern": "^w1 w2 w3$"}})
    client = gateway.openai()
    production = client.responses.with_raw_response.create(
        model=MODEL, input="#words=3", extra_headers={"X-Sluice-Prompt": "resp-eval"}
    )
    test_run = client.responses.with_raw_response.create(
        model=MODEL,
        input="#words=3",
        extra_headers={"X-Sluice-Prompt": "resp-eval", "X-Sluice-Test-Run": "true"},
    )
    production_id = production.headers["x-sluice-request-id"]
    [scored] = wait_for_evaluations(gateway, 1, prompt="resp-eval")
    assert (scored["request_id"], scored["passed"]) == (production_id, True)
    rows = gateway.wait_for_rows(2, prompt="resp-eval")
    marked = {row["request_id"]: row["is_test_run"] for row in rows}
    assert marked == {production_id: False, test_run.headers["x-sluice-request-id"]: True}


def test_a_budget_the_call_would_exhaust_refuses_it_before_the_upstream(
    sqlite_gateway: RunningGateway, fake_upstream: FakeUpstreamThread
) -> None:
    gateway = sqlite_gateway
    create_budget(
        gateway.admin, scope="user", scope_value="thrifty", period="daily", limit_usd=0.001
    )
    client = gateway.openai()
    text = _marker("too-dear")
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(
            model=MODEL,
            input=text,
            max_output_tokens=10_000,  # 10k x $0.60/M = $0.006 > $0.001
            extra_headers={"X-Sluice-User": "thrifty"},
        )
    assert caught.value.status_code == 402
    assert caught.value.body["code"] == "budget_exceeded"  # type: ignore[index]
    assert not [r for r in fake_upstream.requests if text in str(r.body)]


def test_the_reservation_caps_output_and_cached_and_reasoning_tokens_are_priced(
    sqlite_gateway: RunningGateway, fake_upstream: FakeUpstreamThread
) -> None:
    gateway = sqlite_gateway
    budget = create_budget(
        gateway.admin, scope="user", scope_value="cache", period="daily", limit_usd=1
    )
    client = gateway.openai()
    text = f"{_marker('cached')} #words=4 #usage=cached_tokens:8,reasoning_tokens:20"
    response = client.responses.create(
        model=MODEL, input=text, extra_headers={"X-Sluice-User": "cache"}
    )
    [sent] = [r for r in fake_upstream.requests if text in str(r.body)]
    assert isinstance(sent.body["max_output_tokens"], int)  # the default cap, so the bound holds
    assert response.usage is not None
    prompt, output = response.usage.input_tokens, response.usage.output_tokens
    assert output < 20  # more reasoning than output claimed: billed as 20 output tokens
    cost = ((prompt - 8) * Decimal("0.15") + 8 * Decimal("0.075") + 20 * Decimal("0.60")) / 10**6
    [row] = gateway.wait_for_rows(1, user="cache")
    assert (row["cached_tokens"], row["completion_tokens"]) == (8, 20)
    assert usd(row["cost_usd"]) == cost
    assert usd(settled_budget(gateway.admin, budget["id"])["spent_usd"]) == cost


def test_a_client_that_disconnects_mid_stream_is_billed(gateway: RunningGateway) -> None:
    budget = create_budget(
        gateway.admin, scope="user", scope_value="leaver", period="daily", limit_usd=1
    )
    client = gateway.openai()
    text = "#words=400 #delay=5"
    stream = client.responses.create(
        model=MODEL,
        input=text,
        stream=True,
        max_output_tokens=1000,
        extra_headers={"X-Sluice-User": "leaver"},
    )
    for received, _event in enumerate(stream, start=1):
        if received == 10:
            break
    stream.close()
    [row] = gateway.wait_for_rows(1, user="leaver")
    assert row["client_disconnected"] is True and row["usage_estimated"] is True
    prompt = count_responses_input(MODEL, None, text, None)
    assert row["prompt_tokens"] == prompt
    everything = count_text(MODEL, " ".join(f"w{i}" for i in range(1, 401)))
    assert 0 < row["completion_tokens"] < everything
    cost = expected_cost(prompt, row["completion_tokens"])
    assert usd(row["cost_usd"]) == cost
    assert usd(settled_budget(gateway.admin, budget["id"])["spent_usd"]) == cost


def test_stored_responses_are_reached_on_the_upstream_that_made_them(
    start_gateway: GatewayFactory, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECOND_UPSTREAM_KEY", "sk-second")
    with FakeUpstreamThread() as second:
        config = tmp_path / "sluice.toml"
        config.write_text(
            f'[upstreams.second]\nbase_url = "{second.base_url}"\n'
            'api_key_env = "SECOND_UPSTREAM_KEY"\n\n'
            '[[routes]]\nmodels = ["gpt-4o*"]\n\n'
            '[[routes]]\nmodels = ["house-model"]\nupstream = "second"\n'
        )
        gateway = start_gateway(sqlite_url, SLUICE_CONFIG=str(config))
        client = gateway.openai()
        first = client.responses.create(model="house-model", input="#words=2")
        second.requests.clear()
        fetched = client.responses.retrieve(first.id)
        assert (fetched.id, fetched.output_text) == (first.id, "w1 w2")
        items = client.responses.input_items.list(first.id)
        assert [item.type for item in items.data] == ["message"]
        cancelled = client.responses.cancel(first.id)
        assert cancelled.status == "cancelled"
        client.responses.delete(first.id)
        paths = [(r.method, r.path) for r in second.requests]
        assert paths == [
            ("GET", f"/v1/responses/{first.id}"),
            ("GET", f"/v1/responses/{first.id}/input_items"),
            ("POST", f"/v1/responses/{first.id}/cancel"),
            ("DELETE", f"/v1/responses/{first.id}"),
        ]
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(first.id)  # deleted upstream: its 404 passes through
        # Another key may not reach it, and an id no call made is the same 404.
        stranger = gateway.openai()
        for rid in (first.id, "resp_never_made"):
            with pytest.raises(openai.NotFoundError) as caught:
                stranger.responses.retrieve(rid)
            assert caught.value.body["code"] == "response_not_found"  # type: ignore[index]
        # previous_response_id and store pass through untouched.
        follow = client.responses.create(
            model="house-model", input="#words=1", previous_response_id=first.id, store=False
        )
        assert follow.previous_response_id == first.id
        assert second.requests[-1].body["store"] is False


def test_another_worker_finds_a_stored_response_from_the_log(
    start_gateway: GatewayFactory, database_url: str
) -> None:
    gateway = start_gateway(database_url)
    key = gateway.create_key()
    created = gateway.openai(key).responses.create(model=MODEL, input="#words=3")
    gateway.wait_for_rows(1)
    other = start_gateway(database_url)  # nothing in its memory: the log row says where
    assert other.openai(key).responses.retrieve(created.id).output_text == "w1 w2 w3"


@pytest.mark.parametrize("http_client", ["lean", "aiohttp"])
def test_both_http_clients_serve_every_responses_call(
    start_gateway: GatewayFactory, sqlite_url: str, http_client: str
) -> None:
    gateway = start_gateway(sqlite_url, SLUICE_UPSTREAM_CLIENT=http_client)
    client = gateway.openai()
    created = client.responses.create(model=MODEL, input="#words=2")
    with client.responses.stream(model=MODEL, input="#words=3") as stream:
        assert stream.get_final_response().output_text == "w1 w2 w3"
    assert client.responses.retrieve(created.id).output_text == "w1 w2"
    assert [item.type for item in client.responses.input_items.list(created.id).data] == ["message"]
    assert client.responses.cancel(created.id).status == "cancelled"
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    streamed = client.completions.create(model=MODEL, prompt="#words=2", stream=True)
    assert "".join(chunk.choices[0].text for chunk in streamed) == "w1 w2"
    assert client.moderations.create(input="#flag").results[0].flagged is True
