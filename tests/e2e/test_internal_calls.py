"""Calls that originate inside Sluice take the client path: the LLM judge's call is routed,
budgeted, logged and counted like a client's, under its own identity, as test traffic."""

from __future__ import annotations

import re

from tests.conftest import RunningGateway
from tests.e2e.budgets_support import create_budget, new_key, settled_budget, usd
from tests.e2e.evaluations_support import (
    GOOD_JUDGE_REPLY,
    JUDGE_RUBRIC,
    ask,
    monitored_prompt,
    wait_for_evaluations,
)

JUDGE = {"evaluator_key": "llm_judge", "config": {"rubric": JUDGE_RUBRIC, "model": "gpt-4o-mini"}}


def _requests_total(gateway: RunningGateway) -> float:
    text = gateway.http.get("/metrics").text
    pattern = r'sluice_requests_total\{model="gpt-4o-mini",route="chat.completions",status="200"\}'
    match = re.search(pattern + r" ([0-9.e+]+)", text)
    return float(match.group(1)) if match else 0.0


def test_a_judge_call_is_logged_budgeted_and_marked_like_internal_traffic(
    sqlite_gateway: RunningGateway,
) -> None:
    gateway = sqlite_gateway
    judge_budget = create_budget(
        gateway.admin,
        scope="tag",
        scope_value="evaluation=llm_judge",
        period="daily",
        limit_usd=1,
    )
    everything = create_budget(gateway.admin, scope="global", period="daily", limit_usd=1)
    key_id, secret = new_key(gateway, "client")
    monitored_prompt(gateway, "judged-path", JUDGE)
    request_id = ask(gateway.openai(secret), "judged-path", "#reply=" + GOOD_JUDGE_REPLY)
    [evaluation] = wait_for_evaluations(gateway, 1, request_id=request_id)
    assert evaluation["error"] is None and evaluation["score"] == 0.75

    [client_row] = gateway.wait_for_rows(1, key_id=key_id)
    [judge_row] = gateway.wait_for_rows(1, **{"tag.judged_request": request_id})
    # Logged by the proxy like the client's call: routed, priced, timed, with its usage.
    for row in (client_row, judge_row):
        assert row["endpoint"] == "chat.completions" and row["status_code"] == 200
        assert row["model_requested"] == "gpt-4o-mini" and row["upstream"] is not None
        assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
        assert usd(row["cost_usd"]) > 0 and row["latency_ms"] is not None
    # Marked as the proxy marks every internal call: test traffic under an internal identity.
    assert client_row["is_test_run"] is False
    assert judge_row["is_test_run"] is True
    assert judge_row["key_id"] == "sluice-llm-judge"
    assert judge_row["tags"]["evaluation"] == "llm_judge"
    assert usd(evaluation["cost_usd"]) == usd(judge_row["cost_usd"])

    # Budgeted through the same stage: the judge's own budget holds exactly its call, the
    # global one both calls.
    assert usd(settled_budget(gateway.admin, judge_budget["id"])["spent_usd"]) == usd(
        judge_row["cost_usd"]
    )
    assert usd(settled_budget(gateway.admin, everything["id"])["spent_usd"]) == usd(
        client_row["cost_usd"]
    ) + usd(judge_row["cost_usd"])
    # And counted in the request metrics like any call.
    assert _requests_total(gateway) == 2
