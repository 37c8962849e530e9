"""The pure parts of test suites: cron checks, suite files, comparison, degradation, percentiles."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.analytics.prompts import percentile
from gateway.errors import InvalidRequest
from gateway.testsuites.compare import compare_runs
from gateway.testsuites.cron import check_cron, next_fire
from gateway.testsuites.degradation import degradation
from gateway.testsuites.records import RunRecord, TestResultRecord
from gateway.testsuites.suite_io import parse_suite

NOW = datetime(2026, 11, 21, 14, 30, tzinfo=UTC)


def test_cron_is_checked_and_stepped_in_utc() -> None:
    assert check_cron("0  3 * * *") == "0 3 * * *"
    assert next_fire("0 3 * * *", NOW) == datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    assert next_fire("*/15 * * * *", NOW) == datetime(2026, 11, 21, 14, 45, tzinfo=UTC)
    for bad in ("", "0 3 * *", "0 3 * * * *", "99 * * * *", "@daily", "a b c d e"):
        with pytest.raises(InvalidRequest):
            check_cron(bad)


def test_suite_files_parse_with_line_numbers_in_errors() -> None:
    [spec] = parse_suite('{"name": "a", "variables": {"x": 1}, "tags": ["t"]}\n\n', "jsonl")
    assert (spec.name, spec.variables, spec.tags) == ("a", {"x": 1}, ["t"])
    with pytest.raises(InvalidRequest, match="Line 2"):
        parse_suite('{"name": "a"}\n{"name": 3}\n', "jsonl")
    [row] = parse_suite(
        'name,var.n,var.s,messages\nx,3,hi,"[{""role"":""user"",""content"":""q""}]"\n', "csv"
    )
    assert row.variables == {"n": 3, "s": "hi"} and row.messages[0]["content"] == "q"
    with pytest.raises(InvalidRequest, match="Row 2"):
        parse_suite("name,messages\nx,not json\n", "csv")


def _run(run_id: str, status: str = "completed", **extra: Any) -> RunRecord:
    fields: dict[str, Any] = {
        "id": run_id,
        "status": status,
        "prompt": "qa",
        "version": 1,
        "label": None,
        "model": "m",
        "model_override": None,
        "tests": {},
        "concurrency": 1,
        "budget_id": None,
        "schedule_id": None,
        "total": 2,
        "completed": 2,
        "passed": 1,
        "failed": 1,
        "errored": 0,
        "pass_rate": 0.5,
        "mean_score": 0.5,
        "cost_usd": 0.02,
        "estimated_cost_usd": 0.1,
        "gate": False,
        "error": None,
        "cancel_requested": False,
        "starts": 1,
        "created_at": NOW,
        "started_at": NOW,
        "finished_at": NOW,
        "duration_s": 1.0,
    }
    fields.update(extra)
    return RunRecord(**fields)


def _result(case: str, passed: bool, score: float, **extra: Any) -> TestResultRecord:
    fields: dict[str, Any] = {
        "id": case + "r",
        "run_id": "r",
        "test_case_id": case,
        "position": 0,
        "name": case,
        "status": "passed" if passed else "failed",
        "output": "",
        "score": score,
        "passed": passed,
        "latency_ms": 100.0,
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "cost_usd": 0.01,
        "attempts": 1,
        "error": None,
        "request_id": None,
        "evaluations": [],
        "expected_output": None,
        "finished_at": NOW,
    }
    fields.update(extra)
    return TestResultRecord(**fields)


def test_comparison_marks_regressions_and_closes_the_gate() -> None:
    before = [
        _result("a", True, 1.0, evaluations=[{"evaluator_key": "contains", "passed": True}]),
        _result("b", False, 0.0),
        _result("gone", True, 1.0),
    ]
    now = [
        _result(
            "a",
            False,
            0.25,
            latency_ms=150.0,
            cost_usd=0.02,
            evaluations=[{"evaluator_key": "contains", "passed": False}],
        ),
        _result("b", True, 1.0),
        _result("new", True, 1.0),
    ]
    result = compare_runs(_run("now", mean_score=0.75), now, _run("before"), before)
    cases = {c.name: c for c in result.cases}
    assert (cases["a"].change, cases["b"].change) == ("regressed", "fixed")
    assert (cases["gone"].change, cases["new"].change) == ("removed", "added")
    assert cases["a"].score_delta == -0.75 and cases["a"].latency_delta_ms == 50.0
    assert cases["a"].cost_delta_usd == pytest.approx(0.01)
    assert cases["a"].regressed_evaluators == ["contains"]
    assert (result.gate, result.regressed, result.fixed) == (False, 1, 1)
    assert result.mean_score_delta == 0.25
    fine = compare_runs(_run("x"), before[1:2], _run("y"), before[1:2])
    assert fine.gate is True and fine.reason == "no case regressed"
    unfinished = compare_runs(_run("x", status="running"), [], _run("y"), [])
    assert unfinished.gate is False


def test_degradation_needs_more_than_the_allowed_drop_or_a_lower_pass_rate() -> None:
    def run(mean: float, passed: int) -> Any:
        return SimpleNamespace(mean_score=mean, passed=passed, completed=4)

    assert degradation(run(0.91, 4), run(1.0, 4), 0.1) == []
    assert degradation(run(0.89, 4), run(1.0, 4), 0.1)[0].startswith("mean score fell")
    assert degradation(run(1.0, 3), run(1.0, 4), 0.1) == ["pass rate fell from 100% to 75%"]


def test_percentiles_interpolate_like_postgres() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([400.0, 100.0, 300.0, 200.0], 0.5) == 250.0
    assert percentile([100.0, 200.0, 300.0, 400.0], 0.95) == pytest.approx(385.0)
