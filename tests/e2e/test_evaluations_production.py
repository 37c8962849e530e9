"""Production traffic scored by its version's evaluators: inline and queued (the embedded
queue), per response and per version, judges, sampling, dependencies, test traffic, feedback."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import pytest

from evaluators import should_sample
from sluice_devtools.fake_upstream import FakeUpstreamThread
from tests.conftest import GatewayFactory, RunningGateway
from tests.e2e.evaluations_support import (
    GOOD_JUDGE_REPLY,
    JUDGE_RUBRIC,
    ask,
    attach,
    evaluations,
    monitored_prompt,
    response_scores,
    wait_for_evaluations,
)
from tests.e2e.prompts_support import make_prompt, set_label, system

ANSWER_SCHEMA = {
    "type": "object",
    "required": ["score", "reason"],
    "properties": {"score": {"type": "integer"}, "reason": {"type": "string"}},
}
JUDGE = {"evaluator_key": "llm_judge", "config": {"rubric": JUDGE_RUBRIC, "model": "gpt-4o-mini"}}


def _by_key(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["evaluator_key"]: row for row in rows}


def _judge_calls(fake: FakeUpstreamThread, marker: str) -> list[dict[str, Any]]:
    return [
        r.body
        for r in list(fake.requests)
        if r.body.get("messages")
        and "impartial evaluator" in str(r.body["messages"][0].get("content"))
        and marker in str(r.body["messages"][-1].get("content"))
    ]


def test_json_schema_and_judge_scores_per_response_and_per_version(
    gateway: RunningGateway,
) -> None:
    monitored_prompt(
        gateway,
        "answers",
        {"evaluator_key": "json_schema"},  # the version's response_schema
        JUDGE,
        response_schema=ANSWER_SCHEMA,
    )
    client = gateway.openai()
    good = ask(client, "answers", "#reply=" + GOOD_JUDGE_REPLY)
    meh = ask(client, "answers", '#reply={"score": 2, "reason": "meh"}')
    rows = wait_for_evaluations(gateway, 4, prompt="answers", version=1)
    assert {row["context"] for row in rows} == {"production"}

    first = response_scores(gateway, good)
    scores = {e["evaluator_key"]: e["score"] for e in first["evaluations"]}
    assert scores == {"json_schema": 1.0, "llm_judge": 0.75}
    assert first["overall_score"] == pytest.approx(0.875) and first["passed"] is True
    judge = _by_key(first["evaluations"])["llm_judge"]
    assert judge["details"]["judge_score"] == 4 and judge["details"]["reason"] == "ok"
    assert float(judge["cost_usd"]) > 0  # priced like any gateway call
    assert response_scores(gateway, meh)["overall_score"] == pytest.approx(0.625)

    summary = gateway.admin.get("/admin/evaluations/summary", params={"prompt": "answers"}).json()
    assert len(summary) == 1
    version = summary[0]
    assert (version["prompt"], version["version"], version["responses"]) == ("answers", 1, 2)
    assert version["overall_score"] == pytest.approx(0.75)
    per_key = {e["evaluator_key"]: e for e in version["evaluators"]}
    assert per_key["json_schema"]["mean_score"] == 1.0
    assert per_key["llm_judge"]["mean_score"] == pytest.approx(0.5)
    assert per_key["llm_judge"]["pass_rate"] == pytest.approx(0.5)
    assert float(per_key["llm_judge"]["cost_usd"]) > 0

    # The judge's own calls are logged as test traffic, pointing at the response judged,
    # and are never evaluated themselves.
    judged = gateway.wait_for_rows(2, **{"tag.evaluation": "llm_judge"})
    assert {row["tags"]["judged_request"] for row in judged} == {good, meh}
    assert all(row["is_test_run"] for row in judged)
    assert all(evaluations(gateway, request_id=row["request_id"]) == [] for row in judged)


def test_each_version_is_scored_by_its_own_evaluators(sqlite_gateway: RunningGateway) -> None:
    gateway = sqlite_gateway
    make_prompt(gateway, "twov", system("one"), system("two"))
    set_label(gateway, "twov", "production", 1)
    attach(gateway, "twov", 1, {"evaluator_key": "contains", "config": {"value": "w2"}})
    attach(gateway, "twov", 2, {"evaluator_key": "regex", "config": {"pattern": "^w1 w2$"}})
    attach(gateway, "twov", 2, {"evaluator_key": "length", "config": {"max": 3}})
    client = gateway.openai()
    v1 = [ask(client, "twov", "#words=2") for _ in range(3)]
    v2 = [ask(client, "twov", "#words=2", {"X-Sluice-Prompt-Version": "2"}) for _ in range(3)]
    wait_for_evaluations(gateway, 3 + 6, prompt="twov")
    for request_id in v1:
        rows = evaluations(gateway, request_id=request_id)
        assert [(r["evaluator_key"], r["version"], r["passed"]) for r in rows] == [
            ("contains", 1, True)
        ]
    for request_id in v2:
        rows = _by_key(evaluations(gateway, request_id=request_id))
        assert set(rows) == {"regex", "length"}
        assert rows["regex"]["passed"] is True and rows["length"]["passed"] is False
        assert rows["length"]["details"]["length"] == 5


def test_sampling_is_deterministic_per_request_id(sqlite_gateway: RunningGateway) -> None:
    gateway = sqlite_gateway
    sampled, everything = monitored_prompt(
        gateway,
        "sampled",
        {"evaluator_key": "contains", "config": {"value": "w"}, "sampling_rate": 0.5},
        {"evaluator_key": "json_valid"},
    )
    client = gateway.openai()
    ids = [ask(client, "sampled", "#words=1") for _ in range(40)]
    wait_for_evaluations(gateway, 40, evaluator_id=everything["id"])
    scored = {row["request_id"] for row in evaluations(gateway, evaluator_id=sampled["id"])}
    expected = {rid for rid in ids if should_sample(rid, sampled["id"], 0.5)}
    assert scored == expected and 5 < len(expected) < 35


def test_dependencies_skip_what_cannot_pass(sqlite_gateway: RunningGateway) -> None:
    gateway = sqlite_gateway
    monitored_prompt(
        gateway,
        "deps",
        {"evaluator_key": "json_valid"},
        {
            "evaluator_key": "json_schema",
            "config": {"schema": ANSWER_SCHEMA},
            "depends_on": ["json_valid"],
        },
        {**JUDGE, "depends_on": ["json_schema"]},
    )
    client = gateway.openai()
    prose = ask(client, "deps", "#reply=plain prose, deps-marker")
    good = ask(client, "deps", "#reply=" + GOOD_JUDGE_REPLY)
    wait_for_evaluations(gateway, 3, request_id=prose)
    wait_for_evaluations(gateway, 3, request_id=good)
    rows = _by_key(evaluations(gateway, request_id=prose))
    assert rows["json_valid"]["passed"] is False
    assert "response is not JSON" in rows["json_valid"]["details"]["reason"]
    for key in ("json_schema", "llm_judge"):
        assert rows[key]["skipped"] is True and rows[key]["score"] is None
        assert (
            "did not pass" in rows[key]["details"]["reason"]
            or "skipped" in rows[key]["details"]["reason"]
        )
    assert response_scores(gateway, prose)["overall_score"] == 0.0  # only json_valid counts
    assert {r["evaluator_key"]: r["passed"] for r in evaluations(gateway, request_id=good)} == {
        "json_valid": True,
        "json_schema": True,
        "llm_judge": True,
    }


def test_a_judge_reply_that_is_not_a_score_is_an_error_after_retries(
    start_gateway: GatewayFactory, sqlite_url: str, fake_upstream: FakeUpstreamThread
) -> None:
    gateway = start_gateway(sqlite_url, SLUICE_EVAL_ATTEMPTS="2")
    monitored_prompt(
        gateway,
        "badjudge",
        JUDGE,
        {"evaluator_key": "json_schema", "config": {"schema": ANSWER_SCHEMA}},
    )
    client = gateway.openai()
    request_id = ask(client, "badjudge", "#reply=no score here, badjudge-marker")
    rows = _by_key(wait_for_evaluations(gateway, 2, request_id=request_id))
    judge = rows["llm_judge"]
    assert judge["passed"] is False and judge["score"] is None
    assert judge["error"].startswith("judge reply is not a valid score: reply is not JSON")
    assert judge["details"]["raw_reply"] == "no score here, badjudge-marker"
    assert judge["details"]["attempts"] == 2
    assert float(judge["cost_usd"]) > 0  # both failed attempts were paid for
    assert len(_judge_calls(fake_upstream, "badjudge-marker")) == 2
    # A body that is not JSON is a plain failure with its reason, not an error.
    schema = rows["json_schema"]
    assert (schema["score"], schema["passed"], schema["error"]) == (0.0, False, None)
    assert schema["details"]["reason"].startswith("response is not JSON")
    assert response_scores(gateway, request_id)["overall_score"] == 0.0


def test_test_traffic_is_never_evaluated_as_production(
    start_gateway: GatewayFactory, sqlite_url: str
) -> None:
    gateway = start_gateway(sqlite_url, SLUICE_EVAL_SWEEP_GRACE="0.01")
    monitored_prompt(gateway, "tests-only", {"evaluator_key": "json_valid"}, JUDGE)
    client = gateway.openai()
    test_runs = [
        ask(client, "tests-only", "#reply=" + GOOD_JUDGE_REPLY, {"X-Sluice-Test-Run": "true"})
        for _ in range(3)
    ]
    body_flag = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "#json"}],
        extra_headers={"X-Sluice-Prompt": "tests-only"},
        extra_body={"sluice": {"test_run": True}},
    ).headers["x-sluice-request-id"]
    gateway.wait_for_rows(4, prompt="tests-only", is_test_run="true")
    assert gateway.admin.post("/admin/evaluations/sweep").json() == {"enqueued": 0}
    barrier = ask(client, "tests-only", "#reply=" + GOOD_JUDGE_REPLY)
    wait_for_evaluations(gateway, 2, request_id=barrier)
    for request_id in [*test_runs, body_flag]:
        assert evaluations(gateway, request_id=request_id) == []
    assert {row["request_id"] for row in evaluations(gateway)} == {barrier}


def test_human_feedback_and_manual_scores(sqlite_gateway: RunningGateway) -> None:
    gateway = sqlite_gateway
    monitored_prompt(gateway, "fb", {"evaluator_key": "contains", "config": {"value": "w1"}})
    request_id = ask(gateway.openai(), "fb", "#words=1")
    wait_for_evaluations(gateway, 1, request_id=request_id)
    path = f"/admin/responses/{request_id}/evaluations"
    posted = [
        gateway.admin.post(path, json=body)
        for body in (
            {"thumbs": "down", "author": "ana@example.com"},
            {"rating": 4, "comment": "good, a bit terse"},
            {"comment": "why so short?"},
            {"score": 0.9, "passed": False, "name": "tone"},
        )
    ]
    assert [r.status_code for r in posted] == [201] * 4, [r.text for r in posted]
    made = [r.json() for r in posted]
    assert [(m["evaluator_key"], m["score"], m["passed"]) for m in made] == [
        ("feedback", 0.0, False),
        ("feedback", 0.75, True),
        ("feedback", None, None),
        ("tone", 0.9, False),
    ]
    assert made[0]["author"] == "ana@example.com" and made[0]["details"] == {"thumbs": "down"}
    assert {m["context"] for m in made} == {"manual"}
    scores = response_scores(gateway, request_id)
    assert len(scores["evaluations"]) == 5
    assert scores["overall_score"] == 1.0  # feedback is listed, not mixed into the score
    assert len(evaluations(gateway, context="manual")) == 4
    assert len(evaluations(gateway, context="manual", passed="true")) == 1

    for body, param in (
        ({}, "score"),
        ({"rating": 6}, "rating"),
        ({"thumbs": "sideways"}, "thumbs"),
    ):
        response = gateway.admin.post(path, json=body)
        assert response.status_code == 400 and response.json()["error"]["param"] == param
    missing = gateway.admin.post("/admin/responses/nope/evaluations", json={"thumbs": "up"})
    assert missing.status_code == 404
    assert gateway.admin.get("/admin/responses/nope/evaluations").status_code == 404
    for params, param in (
        ({"context": "nightly"}, "context"),
        ({"passed": "maybe"}, "passed"),
        ({"since": "yesterday"}, "since"),
        ({"colour": "red"}, "colour"),
    ):
        response = gateway.admin.get("/admin/evaluations", params=params)
        assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_unlogged_responses_are_scored_inline_but_not_later(sqlite_gateway: RunningGateway) -> None:
    gateway = sqlite_gateway
    monitored_prompt(
        gateway, "private", {"evaluator_key": "contains", "config": {"value": "w1"}}, JUDGE
    )
    request_id = ask(gateway.openai(), "private", "#words=1", {"X-Sluice-No-Log": "response"})
    rows = _by_key(wait_for_evaluations(gateway, 2, request_id=request_id))
    assert rows["contains"]["passed"] is True  # the gateway had the text in hand
    assert "not logged" in rows["llm_judge"]["error"]


def test_scores_per_ab_variant_feed_the_ab_results(sqlite_gateway: RunningGateway) -> None:
    gateway = sqlite_gateway
    make_prompt(gateway, "split", system("A"), system("B"))
    set_label(gateway, "split", "production", 1)
    for version in (1, 2):
        attach(gateway, "split", version, {"evaluator_key": "contains", "config": {"value": "w3"}})
    test = gateway.admin.post(
        "/admin/ab-tests",
        json={
            "prompt": "split",
            "start": True,
            "variants": [
                {"name": "control", "version": 1, "weight": 1},
                {"name": "treatment", "version": 2, "weight": 1},
            ],
        },
    )
    assert test.status_code == 201, test.text
    client = gateway.openai()
    for i in range(20):
        ask(client, "split", "#words=3" if i % 2 else "#words=2", {"X-Sluice-User": f"u{i}"})
    wait_for_evaluations(gateway, 20, prompt="split")
    summary = gateway.admin.get(
        "/admin/evaluations/summary", params={"prompt": "split", "by": "variant"}
    ).json()
    assert {s["variant"] for s in summary} == {"control", "treatment"}
    assert sum(s["responses"] for s in summary) == 20
    detail = gateway.admin.get(f"/admin/ab-tests/{test.json()['id']}").json()
    scored = {v["name"]: v["scores"] for v in detail["results"]["variants"]}
    assert sum(s["contains"]["n"] for s in scored.values()) == 20
    assert gateway.admin.get("/admin/evaluations/summary", params={"by": "x"}).status_code == 400


def test_metrics_count_evaluations_and_jobs(sqlite_gateway: RunningGateway) -> None:
    gateway = sqlite_gateway
    monitored_prompt(
        gateway, "metered", {"evaluator_key": "contains", "config": {"value": "w1"}}, JUDGE
    )
    request_id = ask(gateway.openai(), "metered", "#reply=" + GOOD_JUDGE_REPLY)
    wait_for_evaluations(gateway, 2, request_id=request_id)
    text = gateway.http.get("/metrics").text

    def value(pattern: str) -> float:
        match = re.search(pattern + r" ([0-9.e+]+)", text)
        assert match, pattern
        return float(match.group(1))

    assert value(r'sluice_evaluations_total\{evaluator="contains",result="failed"\}') == 1
    assert value(r'sluice_evaluations_total\{evaluator="llm_judge",result="passed"\}') == 1
    assert value(r'sluice_evaluation_duration_seconds_count\{evaluator="llm_judge"\}') == 1
    assert value(r'sluice_evaluation_jobs_total\{outcome="done"\}') >= 1
    assert value(r'sluice_evaluation_jobs_enqueued_total\{source="gateway"\}') == 1
    assert 'sluice_evaluation_queue_jobs{state="dead"}' in text


def test_the_embedded_sweep_refills_lost_evaluations(
    start_gateway: GatewayFactory, sqlite_url: str
) -> None:
    gateway = start_gateway(sqlite_url, SLUICE_EVAL_SWEEP_GRACE="0.01")
    [contains] = monitored_prompt(
        gateway, "refill", {"evaluator_key": "contains", "config": {"value": "w1"}}
    )
    ids = [ask(gateway.openai(), "refill", "#words=1") for _ in range(3)]
    wait_for_evaluations(gateway, 3, prompt="refill")
    # A config added later does not reach back to responses logged before it existed.
    attach(gateway, "refill", 1, {"evaluator_key": "json_valid"})
    assert gateway.admin.post("/admin/evaluations/sweep").json() == {"enqueued": 0}
    with sqlite3.connect(sqlite_url.split("///", 1)[1]) as db:  # evaluations lost
        db.execute("DELETE FROM evaluations WHERE evaluator_config_id = ?", (contains["id"],))
    assert evaluations(gateway, evaluator_id=contains["id"]) == []
    assert gateway.admin.post("/admin/evaluations/sweep").json() == {"enqueued": 3}
    rows = wait_for_evaluations(gateway, 3, evaluator_id=contains["id"])
    assert sorted(row["request_id"] for row in rows) == sorted(ids)
    assert gateway.admin.post("/admin/evaluations/sweep").json() == {"enqueued": 0}


def test_judge_failures_are_recorded_not_raised(
    start_gateway: GatewayFactory, sqlite_url: str, fake_upstream: FakeUpstreamThread
) -> None:
    gateway = start_gateway(sqlite_url, SLUICE_EVAL_ATTEMPTS="2")
    failing_rubric = "Polite. #fault=500 judge-fault-marker"  # the fake reads the judge's prompt
    monitored_prompt(
        gateway,
        "judged",
        {
            "evaluator_key": "llm_judge",
            "config": {"rubric": failing_rubric, "model": "gpt-4o-mini"},
        },
    )
    request_id = ask(gateway.openai(), "judged", "#reply=" + GOOD_JUDGE_REPLY)
    [row] = wait_for_evaluations(gateway, 1, request_id=request_id)
    assert row["error"].startswith("judge model answered HTTP 500")
    assert row["details"]["attempts"] == 2
    assert len(_judge_calls(fake_upstream, "judge-fault-marker")) == 2

    # A judge over its budget is refused before any call is made.
    budget = gateway.admin.post(
        "/admin/budgets",
        json={
            "scope": "tag",
            "scope_value": "evaluation=llm_judge",
            "period": "daily",
            "limit_usd": "0.0000001",
        },
    )
    assert budget.status_code == 201, budget.text
    monitored_prompt(gateway, "capped", JUDGE)
    capped = ask(gateway.openai(), "capped", "#reply=" + GOOD_JUDGE_REPLY + " capped-marker")
    [row] = wait_for_evaluations(gateway, 1, request_id=capped)
    assert "no budget left for the judge" in row["error"]
    assert _judge_calls(fake_upstream, "capped-marker") == []
