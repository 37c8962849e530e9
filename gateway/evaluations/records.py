"""What the evaluation services hand out and take in: configs, evaluations, jobs, as values."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import msgspec

__all__ = [
    "CONTEXTS",
    "Context",
    "DeadLetter",
    "EvaluationRecord",
    "EvaluatorConfigRecord",
    "InlineResult",
    "Job",
    "QueueDepth",
    "ResponseScore",
]

Context = Literal["production", "test_run", "manual"]
CONTEXTS: tuple[Context, ...] = ("production", "test_run", "manual")


class EvaluatorConfigRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    prompt: str | None
    """The owning version's prompt slug (None for a test case's config)."""
    version: int | None
    prompt_version_id: str | None
    test_case_id: str | None
    evaluator_key: str
    evaluator_version: str
    config: dict[str, Any]
    weight: float
    threshold: float | None
    """None: the evaluator's default (1.0 for checks, 0.5 for scores)."""
    run_mode: str
    sampling_rate: float
    depends_on: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class EvaluationRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    request_id: str
    request_log_id: str
    evaluator_config_id: str | None
    context: str
    test_run_id: str | None
    prompt: str | None
    version: int | None
    ab_variant: str | None
    evaluator_key: str
    evaluator_version: str
    config: dict[str, Any]
    weight: float
    threshold: float | None
    score: float | None
    passed: bool | None
    skipped: bool
    error: str | None
    details: dict[str, Any]
    duration_ms: float | None
    cost_usd: Decimal | None
    author: str | None
    created_at: datetime


class ResponseScore(msgspec.Struct, frozen=True, kw_only=True):
    """A response's evaluations and their weighted mean (automatic ones only)."""

    request_id: str
    request_log_id: str
    overall_score: float | None
    """Weighted mean of the automatic evaluations that ran (no skips, no errors)."""
    passed: bool | None
    """Every automatic evaluation that ran passed (None when none ran)."""
    evaluations: list[EvaluationRecord]


class InlineResult(msgspec.Struct, frozen=True, array_like=True):
    """One inline evaluator's result, computed in the gateway, carried to the worker to store."""

    spec_id: str
    score: float
    passed: bool
    skipped: bool
    error: str | None
    details: dict[str, Any]
    duration_ms: float


class Job(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Store and complete the evaluation of one logged response.

    `inline` holds the results the gateway already computed; the worker writes them and runs
    the specs still missing (the queued ones, or every one for a job from the sweep).
    """

    request_log_id: str
    enqueued_by: str = "gateway"
    """gateway, sweep or requeue: for reading dead letters."""
    inline: list[InlineResult] = []


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    job: Job
    error: str
    failures: int
    failed_at: datetime


class QueueDepth(msgspec.Struct, frozen=True, kw_only=True):
    waiting: int
    """Jobs no worker has taken yet."""
    in_flight: int
    """Jobs a worker has taken and not finished (or whose worker died)."""
    dead: int
