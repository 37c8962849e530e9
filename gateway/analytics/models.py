"""Model analytics over a window: quality, speed, cost and reliability per model, and the
most accurate, fastest and best-value (score per dollar) model with the figures behind each.

A model is the one requests asked for (`model_requested`, what a route serves). Scores are
the evaluations of that model's responses (production and test, not manual).

Whole UTC days come from the daily rollup `request_log_daily` and whole hours from
`evaluation_model_hourly`; the partial days (hours) at the window's edges from the raw rows
(gateway/analytics/rollup.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import CompoundSelect, case, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.analytics.rollup import HOUR, NO_MODEL, split
from gateway.analytics.window import Window
from gateway.db.models import (
    Evaluation,
    EvaluationModelHourly,
    RequestLog,
    RequestLogDaily,
    RequestLogId,
)

__all__ = ["ModelAnalytics", "ModelFigures", "ModelPick", "ModelReport"]


class ModelFigures(msgspec.Struct, kw_only=True):
    model: str
    requests: int
    success_rate: float
    mean_latency_ms: float | None
    cost_per_request_usd: float | None
    total_cost_usd: float
    mean_score: float | None = None
    evaluations: int = 0
    score_per_usd: float | None = None
    """Mean score divided by the mean cost of a request: quality bought per dollar."""


class ModelPick(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    why: str
    figures: ModelFigures


class ModelReport(msgspec.Struct, frozen=True, kw_only=True):
    since: str
    until: str
    models: list[ModelFigures]
    most_accurate: ModelPick | None
    fastest: ModelPick | None
    best_value: ModelPick | None


class ModelAnalytics:
    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._dialect = engine.dialect.name
        self._sessions = sessions

    async def report(self, window: Window) -> ModelReport:
        parts = split(window)
        has_model = RequestLog.model_requested.is_not(None)
        logs: CompoundSelect[Any] = union_all(
            select(
                RequestLog.model_requested,
                func.count(),
                func.count(case((RequestLog.status_code == 200, 1))),
                func.sum(RequestLog.latency_ms),
                func.sum(RequestLog.cost_usd),
                func.count(RequestLog.cost_usd),
            )
            .where(parts.raw(RequestLog.created_at), has_model)
            .group_by(RequestLog.model_requested),
            select(
                RequestLogDaily.model_requested,
                func.sum(RequestLogDaily.requests),
                func.sum(RequestLogDaily.succeeded),
                func.sum(RequestLogDaily.latency_ms_sum),
                func.sum(RequestLogDaily.cost_usd),
                func.sum(RequestLogDaily.cost_count),
            )
            .where(parts.days(RequestLogDaily.day), RequestLogDaily.model_requested != NO_MODEL)
            .group_by(RequestLogDaily.model_requested),
        )
        # An evaluation counts when it and its request both fall in the window. The hourly
        # rollup has those whose two hours are whole hours of the window; the raw rows the
        # rest: evaluations in the partial hours at the edges, and evaluations inside whose
        # request is in an edge hour. Both raw parts look rows up by id (correlated
        # subqueries), so they cost what the edges hold, not what the window holds. On Postgres
        # the request's time and model come from request_log_ids, whose log_id is unique (the
        # partitioned log cannot be probed by id alone).
        hours = split(window, HOUR)
        log_id, log_at, log_model = (
            (RequestLogId.log_id, RequestLogId.created_at, RequestLogId.model_requested)
            if self._dialect == "postgresql"
            else (RequestLog.id, RequestLog.created_at, RequestLog.model_requested)
        )
        scored = (Evaluation.context != "manual", Evaluation.score.is_not(None))
        model_in_window = (
            select(log_model)
            .where(log_id == Evaluation.request_log_id, log_at >= window.since)
            .where(log_at < window.until)
            .scalar_subquery()
        )
        edge_scores = (
            select(model_in_window.label("model"), Evaluation.score)
            .where(hours.raw(Evaluation.created_at), *scored)
            .subquery()
        )

        def of_request(measure: Any) -> Any:
            return (
                select(measure)
                .where(Evaluation.request_log_id == log_id, hours.whole(Evaluation.created_at))
                .where(*scored)
                .scalar_subquery()
            )

        edge_requests = (
            select(
                log_model.label("model"),
                of_request(func.count(Evaluation.score)).label("count"),
                of_request(func.sum(Evaluation.score)).label("total"),
            )
            .where(hours.raw(log_at), log_model.is_not(None))
            .subquery()
        )
        hourly = EvaluationModelHourly
        scores: CompoundSelect[Any] = union_all(
            select(
                edge_scores.c.model, func.count(edge_scores.c.score), func.sum(edge_scores.c.score)
            )
            .where(edge_scores.c.model.is_not(None))
            .group_by(edge_scores.c.model),
            select(
                edge_requests.c.model,
                func.sum(edge_requests.c.count),
                func.sum(edge_requests.c.total),
            ).group_by(edge_requests.c.model),
            select(hourly.model_requested, func.sum(hourly.evaluations), func.sum(hourly.score_sum))
            .where(hours.days(hourly.log_hour), hours.days(hourly.eval_hour))
            .group_by(hourly.model_requested),
        )
        # Two sessions, two queries at once: the answer waits for the slower, not their sum.
        async with self._sessions() as session, self._sessions() as other:
            logged, evaluated = await asyncio.gather(session.execute(logs), other.execute(scores))
        sums: dict[str, list[Any]] = {}
        for model, requests, ok, latency, cost, costed in logged:
            total = sums.setdefault(model, [0, 0, 0.0, Decimal(0), 0])
            for i, value in enumerate((requests, ok, latency, cost, costed)):
                total[i] += value if i != 3 else Decimal(value or 0)
        figures = {
            model: ModelFigures(
                model=model,
                requests=int(requests),
                success_rate=int(ok) / int(requests),
                mean_latency_ms=float(latency) / int(requests),
                cost_per_request_usd=float(cost / int(costed)) if costed else None,
                total_cost_usd=float(cost),
            )
            for model, (requests, ok, latency, cost, costed) in sums.items()
        }
        score_sums: dict[str, list[float]] = {}
        for model, count, score_sum in evaluated:
            total_scores = score_sums.setdefault(model, [0, 0.0])
            total_scores[0] += int(count or 0)
            total_scores[1] += float(score_sum or 0.0)
        for model, (count, score_sum) in score_sums.items():
            if model in figures and count:
                figures[model].evaluations = int(count)
                figures[model].mean_score = score_sum / count
        for item in figures.values():
            if item.mean_score is not None and item.cost_per_request_usd:
                item.score_per_usd = item.mean_score / item.cost_per_request_usd
        models = sorted(figures.values(), key=lambda f: f.model)
        return ModelReport(
            since=window.since.isoformat(),
            until=window.until.isoformat(),
            models=models,
            most_accurate=_pick(
                [m for m in models if m.mean_score is not None],
                lambda m: m.mean_score or 0.0,
                lambda m: (
                    f"highest mean score, {m.mean_score:.3f} over {m.evaluations} evaluations"
                ),
            ),
            fastest=_pick(
                [m for m in models if m.mean_latency_ms is not None],
                lambda m: -(m.mean_latency_ms or 0.0),
                lambda m: (
                    f"lowest mean latency, {m.mean_latency_ms:.0f} ms over {m.requests} requests"
                ),
            ),
            best_value=_pick(
                [m for m in models if m.score_per_usd is not None],
                lambda m: m.score_per_usd or 0.0,
                lambda m: (
                    f"most score per dollar: {m.mean_score:.3f} mean score at "
                    f"${m.cost_per_request_usd:.6f} a request"
                ),
            ),
        )


def _pick(
    candidates: list[ModelFigures],
    key: Callable[[ModelFigures], float],
    why: Callable[[ModelFigures], str],
) -> ModelPick | None:
    if not candidates:
        return None
    best = max(candidates, key=key)
    return ModelPick(model=best.model, why=why(best), figures=best)
