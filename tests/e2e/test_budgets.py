"""Budgets end to end through the openai SDK: the 402, exact costs, streams, admin and pricing."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import openai
import pytest

from gateway.tokens.counting import count_chat_prompt, count_text
from sluice_devtools.fake_upstream import FakeUpstreamThread
from tests.conftest import GatewayFactory, RunningGateway
from tests.e2e.budgets_support import (
    create_budget,
    expected_cost,
    new_key,
    settled_budget,
    usd,
)


def _marker(name: str) -> str:
    """Unique per run: the fake upstream records every test's requests."""
    return f"{name}-{uuid.uuid4().hex[:10]}"


def _messages(marker: str, directive: str = "#words=5") -> list[dict[str, str]]:
    return [{"role": "user", "content": f"{marker} {directive}"}]


def test_a_daily_key_budget_grows_with_spend_and_then_refuses(
    gateway: RunningGateway, fake_upstream: FakeUpstreamThread
) -> None:
    key_id, secret = new_key(gateway)
    client = gateway.openai(secret)
    marker = _marker("newcomer")
    messages = _messages(marker)
    prompt = count_chat_prompt("gpt-4o-mini", messages)
    worst = expected_cost(prompt, 20)
    real = expected_cost(prompt, count_text("gpt-4o-mini", "w1 w2 w3 w4 w5"))
    budget = create_budget(
        gateway.admin, scope="key", scope_value=key_id, period="daily", limit_usd=str(worst + real)
    )
    assert (budget["spent_usd"], budget["reserved_usd"]) == (0, 0)
    assert usd(budget["remaining_usd"]) == worst + real

    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages, max_tokens=20
    )
    assert usd(raw.headers["x-sluice-cost-usd"]) == real
    assert usd(raw.headers["x-sluice-budget-remaining-usd"]) == worst
    assert usd(settled_budget(gateway.admin, budget["id"])["spent_usd"]) == real
    client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=20)
    assert usd(settled_budget(gateway.admin, budget["id"])["spent_usd"]) == 2 * real

    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=20)
    assert refused.value.status_code == 402
    error = refused.value.body
    assert isinstance(error, dict)
    assert error["code"] == "budget_exceeded"
    assert budget["id"] in error["message"]
    assert f"key {key_id}, daily" in error["message"]
    assert len([r for r in fake_upstream.requests if marker in str(r.body)]) == 2
    rows = gateway.wait_for_rows(3, key_id=key_id)
    assert [row["status_code"] for row in rows] == [402, 200, 200]
    assert [usd(row["cost_usd"]) for row in rows[1:]] == [real, real]
    assert rows[0]["cost_usd"] is None


def test_settlement_matches_the_upstreams_usage_to_the_token(gateway: RunningGateway) -> None:
    budget = create_budget(
        gateway.admin, scope="user", scope_value="ada", period="total", limit_usd=1
    )
    client = gateway.openai()
    messages = [
        {"role": "system", "content": "You are terse.", "name": "rules"},
        {"role": "user", "content": "tokens-b2 #words=37"},
    ]
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look a word up.",
                "parameters": {
                    "type": "object",
                    "properties": {"word": {"type": "string", "description": "The word."}},
                },
            },
        }
    ]
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=messages,  # type: ignore[arg-type]
        tools=tools,  # type: ignore[arg-type]
        max_tokens=64,
        extra_headers={"X-Sluice-User": "ada"},
    )
    usage = raw.parse().usage
    assert usage is not None
    assert usage.prompt_tokens == count_chat_prompt("gpt-4o-mini", messages, tools)
    cost = expected_cost(usage.prompt_tokens, usage.completion_tokens)
    assert usd(raw.headers["x-sluice-cost-usd"]) == cost
    [row] = gateway.wait_for_rows(1, user="ada")
    assert usd(row["cost_usd"]) == cost
    assert row["usage_estimated"] is False
    assert usd(settled_budget(gateway.admin, budget["id"])["spent_usd"]) == cost


def test_a_budgeted_request_without_a_limit_gets_the_configured_cap(
    start_gateway: GatewayFactory, sqlite_url: str
) -> None:
    gateway = start_gateway(sqlite_url, SLUICE_DEFAULT_MAX_TOKENS="77")
    create_budget(gateway.admin, scope="global", period="monthly", limit_usd=5)
    echoed = gateway.openai().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "#echo"}]
    )
    assert '"max_completion_tokens":77' in (echoed.choices[0].message.content or "")


def test_streams_settle_from_the_usage_chunk(gateway: RunningGateway) -> None:
    budget = create_budget(
        gateway.admin, scope="tag", scope_value="feature=chat", period="daily", limit_usd=1
    )
    client = gateway.openai()
    messages = _messages("stream-c3", "#words=12")
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=messages,  # type: ignore[arg-type]
        stream=True,
        max_tokens=50,
        extra_headers={"X-Sluice-Tag-Feature": "chat"},
    )
    remaining = usd(raw.headers["x-sluice-budget-remaining-usd"])
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    prompt = count_chat_prompt("gpt-4o-mini", messages)
    cost = expected_cost(prompt, count_text("gpt-4o-mini", text))
    assert remaining == 1 - expected_cost(prompt, 50)
    [row] = gateway.wait_for_rows(1, **{"tag.feature": "chat"})
    assert (usd(row["cost_usd"]), row["usage_estimated"]) == (cost, False)
    assert usd(settled_budget(gateway.admin, budget["id"])["spent_usd"]) == cost


def test_a_client_that_disconnects_mid_stream_pays_for_what_was_streamed(
    gateway: RunningGateway,
) -> None:
    budget = create_budget(
        gateway.admin, scope="user", scope_value="quitter", period="daily", limit_usd=1
    )
    client = gateway.openai()
    messages = _messages("disconnect-d4", "#words=400 #delay=5")
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,  # type: ignore[arg-type]
        stream=True,
        max_tokens=1000,
        extra_headers={"X-Sluice-User": "quitter"},
    )
    for received, _chunk in enumerate(stream, start=1):
        if received == 10:
            break
    stream.close()
    [row] = gateway.wait_for_rows(1, user="quitter")
    assert row["client_disconnected"] is True
    assert row["usage_estimated"] is True
    prompt = count_chat_prompt("gpt-4o-mini", messages)
    assert row["prompt_tokens"] == prompt
    assert (
        0
        < row["completion_tokens"]
        < count_text("gpt-4o-mini", " ".join(f"w{i}" for i in range(1, 401)))
    )
    cost = expected_cost(prompt, row["completion_tokens"])
    assert usd(row["cost_usd"]) == cost > expected_cost(prompt, 0)
    assert usd(settled_budget(gateway.admin, budget["id"])["spent_usd"]) == cost


@pytest.mark.parametrize("stream", [True, False])
def test_an_answer_without_usage_is_billed_from_counted_tokens_and_flagged(
    gateway: RunningGateway, stream: bool
) -> None:
    budget = create_budget(
        gateway.admin, scope="user", scope_value="nousage", period="daily", limit_usd=1
    )
    messages = _messages("nousage-e5", "#fault=nousage #words=9")
    gateway.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,  # type: ignore[arg-type]
        stream=stream,
        max_tokens=30,
        extra_headers={"X-Sluice-User": "nousage"},
    )
    [row] = gateway.wait_for_rows(1, user="nousage")
    completion = count_text("gpt-4o-mini", " ".join(f"w{i}" for i in range(1, 10)))
    assert row["usage_estimated"] is True
    assert row["completion_tokens"] == completion
    cost = expected_cost(count_chat_prompt("gpt-4o-mini", messages), completion)
    assert usd(row["cost_usd"]) == cost
    assert usd(settled_budget(gateway.admin, budget["id"])["spent_usd"]) == cost


def test_a_failed_upstream_call_releases_its_hold(gateway: RunningGateway) -> None:
    budget = create_budget(
        gateway.admin, scope="user", scope_value="unlucky", period="daily", limit_usd=1
    )
    with pytest.raises(openai.InternalServerError):
        gateway.openai().chat.completions.create(
            model="gpt-4o-mini",
            messages=_messages("fail-f6", "#fault=500"),  # type: ignore[arg-type]
            max_tokens=30,
            extra_headers={"X-Sluice-User": "unlucky"},
        )
    settled = settled_budget(gateway.admin, budget["id"])
    assert (settled["spent_usd"], settled["remaining_usd"]) == (0, 1)


def test_embeddings_are_budgeted_on_their_input(gateway: RunningGateway) -> None:
    budget = create_budget(
        gateway.admin, scope="user", scope_value="embedder", period="daily", limit_usd=1
    )
    result = gateway.openai().embeddings.create(
        model="text-embedding-3-small",
        input=["alpha beta gamma", "delta"],
        extra_headers={"X-Sluice-User": "embedder"},
    )
    cost = Decimal(result.usage.prompt_tokens) * Decimal("0.02") / 1_000_000
    assert usd(settled_budget(gateway.admin, budget["id"])["spent_usd"]) == cost


def test_an_absurd_max_tokens_is_refused_before_reserving(
    gateway: RunningGateway, fake_upstream: FakeUpstreamThread
) -> None:
    create_budget(gateway.admin, scope="global", period="daily", limit_usd=1)
    marker = _marker("absurd")
    with pytest.raises(openai.BadRequestError) as refused:
        gateway.openai().chat.completions.create(
            model="gpt-4o-mini",
            messages=_messages(marker),  # type: ignore[arg-type]
            max_tokens=10_000_000,
        )
    assert refused.value.body["param"] == "max_tokens"  # type: ignore[index]
    assert "16384" in refused.value.body["message"]  # type: ignore[index]
    assert not [r for r in fake_upstream.requests if marker in str(r.body)]


def test_budget_changes_reach_the_request_path_at_once(gateway: RunningGateway) -> None:
    budget = create_budget(
        gateway.admin, scope="user", scope_value="flux", period="daily", limit_usd=1
    )
    client = gateway.openai()
    ask = {"model": "gpt-4o-mini", "messages": _messages("flux-h8"), "max_tokens": 20}
    headers = {"X-Sluice-User": "flux"}
    patched = gateway.admin.patch(f"/admin/budgets/{budget['id']}", json={"limit_usd": "0.000001"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["limit_usd"] == 0.000001
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(**ask, extra_headers=headers)  # type: ignore[call-overload]
    assert refused.value.status_code == 402
    assert gateway.admin.delete(f"/admin/budgets/{budget['id']}").status_code == 204
    client.chat.completions.create(**ask, extra_headers=headers)  # type: ignore[call-overload]
    assert gateway.admin.get(f"/admin/budgets/{budget['id']}").status_code == 404


def test_pricing_is_overridable_from_the_config_file_and_the_admin_api(
    start_gateway: GatewayFactory, sqlite_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "sluice.toml"
    config.write_text('[pricing."fake-chat"]\ninput = 1.5\noutput = 2\n')
    gateway = start_gateway(sqlite_url, SLUICE_CONFIG=str(config))
    table = gateway.admin.get("/admin/pricing").json()
    assert table["unpriced_models"] == "refuse"
    assert table["models"]["gpt-4o-mini"] == {
        "input": 0.15,
        "cached_input": 0.075,
        "output": 0.6,
        "max_output_tokens": 16384,
        "source": "default",
    }
    assert table["models"]["fake-chat"]["source"] == "config"
    client = gateway.openai()
    messages = [{"role": "user", "content": "#words=3"}]
    prompt = count_chat_prompt("fake-chat", messages)
    completion = count_text("fake-chat", "w1 w2 w3")

    def cost() -> Decimal:
        raw = client.chat.completions.with_raw_response.create(
            model="fake-chat",
            messages=messages,  # type: ignore[arg-type]
        )
        return usd(raw.headers["x-sluice-cost-usd"])

    assert cost() == (prompt * Decimal("1.5") + completion * 2) / 1_000_000
    put = gateway.admin.put(
        "/admin/pricing",
        json={"models": {"fake-chat": {"input": 3, "output": "0.5", "max_output_tokens": 10}}},
    )
    assert put.status_code == 200, put.text
    assert put.json()["models"]["fake-chat"]["source"] == "admin"
    assert cost() == (prompt * 3 + completion * Decimal("0.5")) / 1_000_000
    assert (
        gateway.admin.put("/admin/pricing", json={"models": {"fake-chat": None}}).status_code == 200
    )
    assert gateway.admin.get("/admin/pricing").json()["models"]["fake-chat"]["source"] == "config"


def test_an_unpriced_model_is_refused_when_budgets_apply(
    gateway: RunningGateway, fake_upstream: FakeUpstreamThread
) -> None:
    client = gateway.openai()
    marker = _marker("unpriced")
    free = client.chat.completions.with_raw_response.create(
        model="fake-chat", messages=[{"role": "user", "content": marker}]
    )
    assert "x-sluice-cost-usd" not in free.headers  # unknown, never zero
    create_budget(gateway.admin, scope="global", period="daily", limit_usd=1)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="fake-chat", messages=[{"role": "user", "content": marker}]
        )
    assert refused.value.body["param"] == "model"  # type: ignore[index]
    assert "has no price" in refused.value.body["message"]  # type: ignore[index]
    assert len([r for r in fake_upstream.requests if marker in str(r.body)]) == 1


def test_the_fallback_price_covers_unpriced_models_when_chosen(
    start_gateway: GatewayFactory, sqlite_url: str
) -> None:
    gateway = start_gateway(sqlite_url, SLUICE_UNPRICED_MODELS="fallback")
    budget = create_budget(gateway.admin, scope="global", period="daily", limit_usd=1)
    put = gateway.admin.put("/admin/pricing", json={"models": {"*": {"input": 10, "output": 30}}})
    assert put.status_code == 200, put.text
    messages = [{"role": "user", "content": "#words=2"}]
    raw = gateway.openai().chat.completions.with_raw_response.create(
        model="fake-chat",
        messages=messages,  # type: ignore[arg-type]
        max_tokens=5,
    )
    prompt = count_chat_prompt("fake-chat", messages)
    cost = (prompt * 10 + count_text("fake-chat", "w1 w2") * 30) / Decimal(1_000_000)
    assert usd(raw.headers["x-sluice-cost-usd"]) == cost
    assert usd(settled_budget(gateway.admin, budget["id"])["spent_usd"]) == cost


def test_the_embedded_ledger_is_rebuilt_from_the_database_after_a_restart(
    start_gateway: GatewayFactory, sqlite_url: str
) -> None:
    first = start_gateway(sqlite_url)
    budget = create_budget(first.admin, scope="global", period="total", limit_usd=1)
    raw = first.openai().chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "#words=4"}], max_tokens=9
    )
    cost = usd(raw.headers["x-sluice-cost-usd"])
    first.close()  # the log is flushed on shutdown; the in-process ledger is gone
    second = start_gateway(sqlite_url)
    assert usd(settled_budget(second.admin, budget["id"])["spent_usd"]) == cost
