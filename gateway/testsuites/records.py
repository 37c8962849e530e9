"""What the testing services hand out: cases, runs, results, comparisons, schedules, as values."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from gateway.evaluations.records import EvaluatorConfigRecord

__all__ = [
    "ACTIVE",
    "FINISHED",
    "CaseComparison",
    "Comparison",
    "RunRecord",
    "RunStatus",
    "ScheduleRecord",
    "TestCaseRecord",
    "TestResultRecord",
]

RunStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
ACTIVE = ("pending", "running")
FINISHED = ("completed", "failed", "cancelled")


class TestCaseRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    prompt: str
    name: str
    variables: dict[str, Any]
    messages: list[dict[str, Any]]
    expected_output: str | None
    tags: list[str]
    evaluators: list[EvaluatorConfigRecord]
    created_at: datetime
    updated_at: datetime


class RunRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    status: str
    prompt: str
    version: int
    label: str | None
    model: str
    model_override: str | None
    tests: dict[str, Any]
    concurrency: int
    budget_id: str | None
    schedule_id: str | None
    total: int
    completed: int
    passed: int
    failed: int
    errored: int
    """Cases whose request failed for good (counted in `failed` too)."""
    pass_rate: float | None
    mean_score: float | None
    cost_usd: float
    estimated_cost_usd: float
    gate: bool | None
    """Every case passed (None until the run finishes)."""
    error: str | None
    cancel_requested: bool
    starts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    comparison: Comparison | None = None


class TestResultRecord(msgspec.Struct, frozen=True, kw_only=True):
    __test__ = False  # tests import it: not a pytest class, whatever its name says

    id: str
    run_id: str
    test_case_id: str | None
    position: int
    name: str
    status: str
    """pending, passed, failed, error or cancelled."""
    output: str | None
    score: float | None
    passed: bool | None
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    attempts: int
    error: str | None
    request_id: str | None
    evaluations: list[dict[str, Any]]
    expected_output: str | None
    finished_at: datetime | None


class CaseComparison(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    test_case_id: str | None
    change: str
    """regressed, fixed, passing, failing, added or removed."""
    passed: bool | None
    baseline_passed: bool | None
    score: float | None
    baseline_score: float | None
    score_delta: float | None
    cost_delta_usd: float | None
    latency_delta_ms: float | None
    regressed_evaluators: list[str]
    """Evaluator keys that passed in the baseline and fall below their threshold now."""


class Comparison(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str
    baseline_run_id: str
    gate: bool
    """False when any case that passed in the baseline fails now (or a run did not complete)."""
    reason: str
    regressed: int
    fixed: int
    mean_score_delta: float | None
    pass_rate_delta: float | None
    cost_delta_usd: float
    mean_latency_delta_ms: float | None
    cases: list[CaseComparison]


class ScheduleRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    prompt: str
    version: int | None
    label: str | None
    cron: str
    model_override: str | None
    tests: dict[str, Any]
    concurrency: int
    budget_id: str | None
    enabled: bool
    max_score_drop: float
    last_run_at: datetime | None
    last_run_id: str | None
    next_run_at: datetime | None
    created_at: datetime
    updated_at: datetime
