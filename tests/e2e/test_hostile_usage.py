"""A hostile upstream's usage through the real gateway: money only moves forward.

The fake upstream's `#usage=` directive makes it report negative, fractional, absurd or
self-contradicting counts. Whatever it says, with a budget on the in-process ledger and on Redis:
the cost header and the logged cost are never negative, a budget's spend never decreases, the
counts the gateway could not trust are billed from its own token count, and every rejected
count shows on /metrics. Rebuilds from the log (a restart, a flushed Redis) cannot go negative.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from decimal import Decimal

import pytest
import redis as redis_sync

from gateway.tokens.counting import count_chat_prompt, count_embedding_input, count_text
from tests.conftest import GatewayFactory, RunningGateway
from tests.e2e.budgets_support import create_budget, expected_cost, settled_budget, usd

REPLY = "w1 w2 w3 w4 w5"
# (directive, metric reason, what the honest bill is in (prompt, completion) terms)
HOSTILE = [
    ("prompt_tokens:-1000000", "negative", "honest"),
    ("completion_tokens:-1000000000", "negative", "honest"),
    ("completion_tokens:1.5", "not_integer", "honest"),
    ('prompt_tokens:"12"', "not_integer", "honest"),
    ("prompt_tokens:true", "not_integer", "honest"),
    ("completion_tokens:99999999999", "absurd", "honest"),
    ("prompt_tokens:1e300", "absurd", "honest"),
    ("cached_tokens:-500", "negative", "honest"),
    ("cached_tokens:100000", "inconsistent", "honest"),
    ("reasoning_tokens:-7", "negative", "honest"),
    ("reasoning_tokens:40", "inconsistent", "reasoning"),
    ("total_tokens:-3", "inconsistent", "honest"),
]


def _rejected(gateway: RunningGateway, reason: str) -> float:
    text = gateway.http.get("/metrics").text
    name = f'sluice_upstream_usage_rejected_total{{reason="{reason}",upstream="default"}}'
    pattern = re.escape(name) + r" ([0-9.e+]+)"
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


@pytest.fixture(params=["local", "redis"])
def ledger_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "local":
        return {}
    return {"SLUICE_REDIS_URL": request.getfixturevalue("redis_url")}


def _budget(gateway: RunningGateway, user: str) -> str:
    budget = create_budget(
        gateway.admin, scope="user", scope_value=user, period="daily", limit_usd=5
    )
    return str(budget["id"])


def test_hostile_chat_usage_never_credits_the_budget(
    start_gateway: GatewayFactory, sqlite_url: str, ledger_env: dict[str, str]
) -> None:
    gateway = start_gateway(sqlite_url, **ledger_env)
    user = f"hostile-{uuid.uuid4().hex[:8]}"
    budget_id = _budget(gateway, user)
    client = gateway.openai()
    spent = Decimal(0)
    for index, (directive, reason, billing) in enumerate(HOSTILE):
        for stream in (False, True):
            before = _rejected(gateway, reason)
            messages = [{"role": "user", "content": f"{user} #reply={REPLY}\n#usage={directive}"}]
            prompt = count_chat_prompt("gpt-4o-mini", messages)
            completion = 40 if billing == "reasoning" else count_text("gpt-4o-mini", REPLY)
            honest = expected_cost(prompt, completion)
            options = {"X-Sluice-User": user}
            if stream:
                with client.chat.completions.with_streaming_response.create(
                    model="gpt-4o-mini", messages=messages, stream=True, extra_headers=options
                ) as response:
                    assert response.status_code == 200
                    text = "".join(response.iter_lines())
                    assert "[DONE]" in text and "error" not in text
            else:
                raw = client.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", messages=messages, max_tokens=50, extra_headers=options
                )
                assert usd(raw.headers["x-sluice-cost-usd"]) == honest, directive
            now = usd(settled_budget(gateway.admin, budget_id)["spent_usd"])
            assert now == spent + honest, (directive, stream)
            spent = now
            assert _rejected(gateway, reason) > before, (directive, stream)
        rows = gateway.wait_for_rows(2 * (index + 1), user=user)
        assert all(usd(row["cost_usd"]) >= 0 for row in rows)
        assert {usd(row["cost_usd"]) for row in rows[:2]} == {honest}, directive

    # Rebuilt from the log, after a restart or a flushed Redis, spend is what was billed.
    gateway.close()
    if "SLUICE_REDIS_URL" in ledger_env:
        redis_sync.Redis.from_url(ledger_env["SLUICE_REDIS_URL"]).flushdb()
    gateway = start_gateway(sqlite_url, **ledger_env)
    assert usd(settled_budget(gateway.admin, budget_id)["spent_usd"]) == spent


def test_hostile_embedding_usage_is_billed_from_the_input(
    start_gateway: GatewayFactory, sqlite_url: str, ledger_env: dict[str, str]
) -> None:
    gateway = start_gateway(sqlite_url, **ledger_env)
    user = f"hostile-embed-{uuid.uuid4().hex[:8]}"
    budget_id = _budget(gateway, user)
    client = gateway.openai()
    text = f"{user} #usage=prompt_tokens:-100000000"
    honest = Decimal(count_embedding_input("text-embedding-3-small", text)) * Decimal("0.02")
    honest /= 1_000_000
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=text, extra_headers={"X-Sluice-User": user}
    )
    assert usd(raw.headers["x-sluice-cost-usd"]) == honest
    assert usd(settled_budget(gateway.admin, budget_id)["spent_usd"]) == honest
    [row] = gateway.wait_for_rows(1, user=user)
    assert (usd(row["cost_usd"]), row["usage_estimated"]) == (honest, True)


def test_a_negative_cost_logged_before_the_fix_is_not_a_credit_in_a_rebuild(
    start_gateway: GatewayFactory, sqlite_url: str
) -> None:
    gateway = start_gateway(sqlite_url)
    user = f"hostile-old-{uuid.uuid4().hex[:8]}"
    budget_id = _budget(gateway, user)
    client = gateway.openai()
    messages = [{"role": "user", "content": f"{user} #reply={REPLY}"}]
    for _ in range(2):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, extra_headers={"X-Sluice-User": user}
        )
    rows = gateway.wait_for_rows(2, user=user)
    honest = usd(rows[0]["cost_usd"])
    gateway.close()
    # What a gateway that trusted negative usage left in the log.
    with sqlite3.connect(sqlite_url.split("///", 1)[1]) as db:
        db.execute("UPDATE request_logs SET cost_usd = -1000.005 WHERE id = ?", (rows[0]["id"],))
    gateway = start_gateway(sqlite_url)
    assert usd(settled_budget(gateway.admin, budget_id)["spent_usd"]) == honest
