"""A/B test results: per-variant figures from the request log, compared against the baseline.

Requests, error rate, mean cost and mean latency come from `request_logs` (test traffic
excluded). Evaluation scores come from a `ScoreProvider`: evaluations are not built yet, so the
default provider returns none and the score rows appear once one is plugged in. Means are
compared with Welch's t-test, rates with a two-proportion z-test, each variant against the
first (the baseline). The leader is the best variant on the primary metric (mean evaluation
score when there are scores, else error rate); the result is conclusive once every variant has
the minimum sample and the leader beats every other variant at `alpha`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import Float, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.models import RequestLog
from gateway.prompts.records import AbTestRecord
from gateway.prompts.stats import Summary, TestResult, two_proportion_z_test, welch_t_test

__all__ = [
    "AbResults",
    "Comparison",
    "ResultsReader",
    "ScoreProvider",
    "ScoreSample",
    "VariantResult",
    "no_scores",
]

ALPHA = 0.05


class ScoreSample(msgspec.Struct, frozen=True):
    score: float
    passed: bool | None = None


ScoreSamples = dict[str, dict[str, list[ScoreSample]]]
"""Variant name -> evaluator key -> one sample per evaluated response."""
ScoreProvider = Callable[[AbTestRecord], Awaitable[ScoreSamples]]


async def no_scores(test: AbTestRecord) -> ScoreSamples:
    """Until evaluations exist there are no scores to compare."""
    return {}


class ScoreSummary(msgspec.Struct, frozen=True):
    n: int
    mean: float
    pass_rate: float | None


class VariantResult(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: int
    weight: float
    requests: int
    errors: int
    error_rate: float | None
    mean_cost_usd: float | None
    mean_latency_ms: float | None
    scores: dict[str, ScoreSummary]
    min_sample_reached: bool


class Comparison(msgspec.Struct, frozen=True, kw_only=True):
    metric: str
    """error_rate, latency_ms, cost_usd, score:<evaluator>, pass_rate:<evaluator>"""
    variant: str
    baseline: str
    test: str
    """welch_t or two_proportion_z"""
    difference: float | None
    """variant minus baseline"""
    statistic: float | None
    p_value: float | None
    significant: bool


class AbResults(msgspec.Struct, frozen=True, kw_only=True):
    alpha: float
    min_samples: int
    min_sample_reached: bool
    variants: list[VariantResult]
    comparisons: list[Comparison]
    primary_metric: str
    leader: str | None
    conclusive: bool


@dataclass(slots=True)
class _Sample:
    """What one variant's rows reduce to."""

    requests: int = 0
    errors: int = 0
    latency: Summary = field(default_factory=lambda: Summary(0, 0.0, 0.0))
    cost: Summary = field(default_factory=lambda: Summary(0, 0.0, 0.0))
    scores: dict[str, list[ScoreSample]] = field(default_factory=dict)

    def score_values(self) -> list[float]:
        return [s.score for samples in self.scores.values() for s in samples]


def _compare(
    metric: str, variant: str, baseline: str, outcome: TestResult | None, diff: float | None
) -> Comparison:
    return Comparison(
        metric=metric,
        variant=variant,
        baseline=baseline,
        test="two_proportion_z" if "rate" in metric else "welch_t",
        difference=diff,
        statistic=None if outcome is None else outcome.statistic,
        p_value=None if outcome is None else outcome.p_value,
        significant=outcome is not None and outcome.p_value < ALPHA,
    )


def _comparisons(name: str, base: str, a: _Sample, b: _Sample) -> list[Comparison]:
    """Variant `a` against baseline `b` on every metric both have."""
    out = [
        _compare(
            "error_rate",
            name,
            base,
            two_proportion_z_test(a.errors, a.requests, b.errors, b.requests),
            a.errors / a.requests - b.errors / b.requests if a.requests and b.requests else None,
        ),
        _compare(
            "latency_ms",
            name,
            base,
            welch_t_test(a.latency, b.latency),
            a.latency.mean - b.latency.mean if a.latency.n and b.latency.n else None,
        ),
        _compare(
            "cost_usd",
            name,
            base,
            welch_t_test(a.cost, b.cost),
            a.cost.mean - b.cost.mean if a.cost.n and b.cost.n else None,
        ),
    ]
    for key in sorted(set(a.scores) & set(b.scores)):
        sa = Summary.of([s.score for s in a.scores[key]])
        sb = Summary.of([s.score for s in b.scores[key]])
        out.append(_compare(f"score:{key}", name, base, welch_t_test(sa, sb), sa.mean - sb.mean))
        pa = [s.passed for s in a.scores[key] if s.passed is not None]
        pb = [s.passed for s in b.scores[key] if s.passed is not None]
        if pa and pb:
            outcome = two_proportion_z_test(sum(pa), len(pa), sum(pb), len(pb))
            diff = sum(pa) / len(pa) - sum(pb) / len(pb)
            out.append(_compare(f"pass_rate:{key}", name, base, outcome, diff))
    return out


def _beats(metric: str, leader: _Sample, other: _Sample) -> bool:
    if metric == "score":
        outcome = welch_t_test(Summary.of(leader.score_values()), Summary.of(other.score_values()))
    else:
        outcome = two_proportion_z_test(
            leader.errors, leader.requests, other.errors, other.requests
        )
    return outcome is not None and outcome.p_value < ALPHA


def _leader(metric: str, samples: dict[str, _Sample]) -> str | None:
    if metric == "score":
        ranked = {n: Summary.of(s.score_values()).mean for n, s in samples.items() if s.scores}
        best = max(ranked.values(), default=None)
    else:
        ranked = {n: -s.errors / s.requests for n, s in samples.items() if s.requests}
        best = max(ranked.values(), default=None)
    top = [name for name, value in ranked.items() if value == best]
    return top[0] if len(top) == 1 else None


class ResultsReader:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], scores: ScoreProvider = no_scores
    ) -> None:
        self._sessions = sessions
        self.scores = scores
        """Replaced by the evaluations capability once it exists."""

    async def _aggregate(self, test_id: str) -> dict[str, _Sample]:
        cost = cast(RequestLog.cost_usd, Float)
        failed = or_(RequestLog.status_code >= 400, RequestLog.error_code.is_not(None))
        query = (
            select(
                RequestLog.ab_variant,
                func.count(),
                func.sum(case((failed, 1), else_=0)),
                func.avg(RequestLog.latency_ms),
                func.avg(RequestLog.latency_ms * RequestLog.latency_ms),
                func.count(RequestLog.cost_usd),
                func.avg(cost),
                func.avg(cost * cost),
            )
            .where(RequestLog.ab_test_id == test_id, RequestLog.is_test_run.is_(False))
            .group_by(RequestLog.ab_variant)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        out: dict[str, _Sample] = {}
        for variant, n, errors, lat, lat2, n_cost, c, c2 in rows:
            out[str(variant)] = _Sample(
                requests=int(n),
                errors=int(errors or 0),
                latency=Summary.from_moments(int(n), float(lat or 0), float(lat2 or 0)),
                cost=Summary.from_moments(int(n_cost), float(c or 0), float(c2 or 0)),
            )
        return out

    async def read(self, test: AbTestRecord) -> AbResults:
        aggregated = await self._aggregate(test.id)
        scores = await self.scores(test)
        samples = {v.name: aggregated.get(v.name, _Sample()) for v in test.variants}
        for name, by_key in scores.items():
            if name in samples:
                samples[name].scores = by_key
        variants = [
            _variant_result(v.name, v.version, v.weight, samples[v.name], test)
            for v in test.variants
        ]
        base = test.variants[0].name
        comparisons = [
            comparison
            for v in test.variants[1:]
            for comparison in _comparisons(v.name, base, samples[v.name], samples[base])
        ]
        metric = "score" if any(s.scores for s in samples.values()) else "error_rate"
        leader = _leader(metric, samples)
        reached = all(v.min_sample_reached for v in variants)
        conclusive = (
            reached
            and leader is not None
            and all(_beats(metric, samples[leader], s) for n, s in samples.items() if n != leader)
        )
        return AbResults(
            alpha=ALPHA,
            min_samples=test.min_samples,
            min_sample_reached=reached,
            variants=variants,
            comparisons=comparisons,
            primary_metric=metric,
            leader=leader,
            conclusive=conclusive,
        )


def _variant_result(
    name: str, version: int, weight: float, sample: _Sample, test: AbTestRecord
) -> VariantResult:
    scores: dict[str, Any] = {}
    for key, values in sample.scores.items():
        passed = [s.passed for s in values if s.passed is not None]
        scores[key] = ScoreSummary(
            n=len(values),
            mean=Summary.of([s.score for s in values]).mean,
            pass_rate=sum(passed) / len(passed) if passed else None,
        )
    return VariantResult(
        name=name,
        version=version,
        weight=weight,
        requests=sample.requests,
        errors=sample.errors,
        error_rate=sample.errors / sample.requests if sample.requests else None,
        mean_cost_usd=sample.cost.mean if sample.cost.n else None,
        mean_latency_ms=sample.latency.mean if sample.latency.n else None,
        scores=scores,
        min_sample_reached=sample.requests >= test.min_samples,
    )
