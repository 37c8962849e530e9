"""Model analytics over a window: quality, speed, cost and reliability per model, and the
most accurate, fastest and best-value (score per dollar) model with the figures behind each.

A model is the one requests asked for (`model_requested`, what a route serves). Scores are
the evaluations of that model's responses (production and test, not manual).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.analytics.window import Window
from gateway.db.models import Evaluation, RequestLog

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
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def report(self, window: Window) -> ModelReport:
        in_window = (
            RequestLog.created_at >= window.since,
            RequestLog.created_at < window.until,
            RequestLog.model_requested.is_not(None),
        )
        logs = (
            select(
                RequestLog.model_requested,
                func.count(),
                func.count(case((RequestLog.status_code == 200, 1))),
                func.avg(RequestLog.latency_ms),
                func.avg(RequestLog.cost_usd),
                func.coalesce(func.sum(RequestLog.cost_usd), 0),
            )
            .where(*in_window)
            .group_by(RequestLog.model_requested)
        )
        scores = (
            select(
                RequestLog.model_requested, func.count(Evaluation.score), func.avg(Evaluation.score)
            )
            .join(RequestLog, RequestLog.id == Evaluation.request_log_id)
            .where(
                Evaluation.created_at >= window.since,
                Evaluation.created_at < window.until,
                Evaluation.context != "manual",
                Evaluation.score.is_not(None),
                *in_window,
            )
            .group_by(RequestLog.model_requested)
        )
        # Two sessions, two queries at once: the answer waits for the slower, not their sum.
        async with self._sessions() as session, self._sessions() as other:
            logged, scored = await asyncio.gather(session.execute(logs), other.execute(scores))
            figures = {
                model: ModelFigures(
                    model=model,
                    requests=requests,
                    success_rate=ok / requests,
                    mean_latency_ms=latency,
                    cost_per_request_usd=float(cost) if cost is not None else None,
                    total_cost_usd=float(total),
                )
                for model, requests, ok, latency, cost, total in logged
            }
            for model, count, mean in scored:
                if model in figures:
                    figures[model].evaluations = count
                    figures[model].mean_score = mean
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
