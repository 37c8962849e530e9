"""Comparing a run with a baseline run, case by case, and the gate a promotion waits on.

Cases are matched by test case id (by name when a case was deleted since). A case
`regressed` when it passed in the baseline and fails now; the gate is open only when both
runs completed and nothing regressed. Deltas are "this run minus the baseline".
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean

from gateway.testsuites.records import CaseComparison, Comparison, RunRecord, TestResultRecord

__all__ = ["compare_runs"]


def _key(result: TestResultRecord) -> str:
    return result.test_case_id or f"name:{result.name}"


def _delta(new: float | None, old: float | None) -> float | None:
    return None if new is None or old is None else new - old


def _failing_evaluators(result: TestResultRecord) -> set[str]:
    return {str(e["evaluator_key"]) for e in result.evaluations if not e.get("passed")}


def _change(now: TestResultRecord | None, before: TestResultRecord | None) -> str:
    if before is None:
        return "added"
    if now is None:
        return "removed"
    if before.passed and not now.passed:
        return "regressed"
    if now.passed and not before.passed:
        return "fixed"
    return "passing" if now.passed else "failing"


def _case(now: TestResultRecord | None, before: TestResultRecord | None) -> CaseComparison:
    some = now or before
    assert some is not None
    regressed: list[str] = []
    if now is not None and before is not None:
        regressed = sorted(_failing_evaluators(now) - _failing_evaluators(before))
    return CaseComparison(
        name=some.name,
        test_case_id=some.test_case_id,
        change=_change(now, before),
        passed=now.passed if now else None,
        baseline_passed=before.passed if before else None,
        score=now.score if now else None,
        baseline_score=before.score if before else None,
        score_delta=_delta(now.score if now else None, before.score if before else None),
        cost_delta_usd=_delta(now.cost_usd if now else None, before.cost_usd if before else None),
        latency_delta_ms=_delta(
            now.latency_ms if now else None, before.latency_ms if before else None
        ),
        regressed_evaluators=regressed,
    )


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None


def compare_runs(
    run: RunRecord,
    results: Sequence[TestResultRecord],
    baseline: RunRecord,
    baseline_results: Sequence[TestResultRecord],
) -> Comparison:
    now = {_key(r): r for r in results}
    before = {_key(r): r for r in baseline_results}
    keys = list(dict.fromkeys([*before, *now]))
    cases = [_case(now.get(k), before.get(k)) for k in keys]
    regressed = sum(1 for c in cases if c.change == "regressed")
    if run.status != "completed" or baseline.status != "completed":
        gate, reason = False, "both runs must be completed to compare them"
    elif regressed:
        gate, reason = False, f"{regressed} case{'s' if regressed > 1 else ''} regressed"
    else:
        gate, reason = True, "no case regressed"
    latency_now = _mean([r.latency_ms for r in results])
    latency_before = _mean([r.latency_ms for r in baseline_results])
    return Comparison(
        run_id=run.id,
        baseline_run_id=baseline.id,
        gate=gate,
        reason=reason,
        regressed=regressed,
        fixed=sum(1 for c in cases if c.change == "fixed"),
        mean_score_delta=_delta(run.mean_score, baseline.mean_score),
        pass_rate_delta=_delta(run.pass_rate, baseline.pass_rate),
        cost_delta_usd=run.cost_usd - baseline.cost_usd,
        mean_latency_delta_ms=_delta(latency_now, latency_before),
        cases=cases,
    )
