"""The evaluations' Prometheus metrics, registered in the process's own registry.

The gateway's /metrics shows its inline evaluations, the jobs it runs itself in the embedded
mode, and the shared queue's depth; each `sluice worker` serves the same metrics for the jobs
it runs on its own port.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from evaluators import SpecOutcome
from gateway.evaluations.records import QueueDepth

__all__ = ["EvaluationMetrics"]

DURATION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5, 30)


class EvaluationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.evaluations = Counter(
            "sluice_evaluations_total",
            "Evaluations recorded, by evaluator and result: passed, failed, error, skipped.",
            ["evaluator", "result"],
            registry=registry,
        )
        self.duration = Histogram(
            "sluice_evaluation_duration_seconds",
            "Time one evaluator took on one response (judge calls and retries included).",
            ["evaluator"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.jobs = Counter(
            "sluice_evaluation_jobs_total",
            "Evaluation jobs finished by this process: done, failed (to be retried), "
            "dead_lettered.",
            ["outcome"],
            registry=registry,
        )
        self.enqueued = Counter(
            "sluice_evaluation_jobs_enqueued_total",
            "Evaluation jobs enqueued, by source: gateway, sweep, requeue.",
            ["source"],
            registry=registry,
        )
        self.queue = Gauge(
            "sluice_evaluation_queue_jobs",
            "Jobs in the evaluation queue: waiting, in_flight (taken by a worker), dead "
            "(in the dead-letter stream).",
            ["state"],
            registry=registry,
        )
        self.dropped = Counter(
            "sluice_evaluation_inline_dropped_total",
            "Responses not evaluated inline because too many were waiting; the sweep "
            "finds them later.",
            registry=registry,
        )
        self._cache: dict[tuple[str, str], tuple[Any, Any]] = {}
        for outcome in ("done", "failed", "dead_lettered"):
            self.jobs.labels(outcome)
        for state in ("waiting", "in_flight", "dead"):
            self.queue.labels(state)

    def record(self, outcomes: Iterable[SpecOutcome]) -> None:
        for outcome in outcomes:
            result = outcome.result
            if result.skipped:
                label = "skipped"
            elif result.error is not None:
                label = "error"
            else:
                label = "passed" if result.passed else "failed"
            key = outcome.spec.evaluator_key
            counter, histogram = self._children(key, label)
            counter.inc()
            if not result.skipped:
                histogram.observe(outcome.duration_ms / 1000)

    def _children(self, key: str, label: str) -> tuple[Any, Any]:
        # labels() costs microseconds per call, per evaluation, on the gateway's process.
        children = self._cache.get((key, label))
        if children is None:
            children = (self.evaluations.labels(key, label), self.duration.labels(key))
            self._cache[(key, label)] = children
        return children

    def set_depth(self, depth: QueueDepth) -> None:
        self.queue.labels("waiting").set(depth.waiting)
        self.queue.labels("in_flight").set(depth.in_flight)
        self.queue.labels("dead").set(depth.dead)
