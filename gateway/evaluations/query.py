"""Reading evaluations for people: filtered lists, one response's scores, per-version quality.

A response's overall score is the weighted mean of its automatic evaluations that produced a
score (skips and errors do not count); human feedback is listed with it but not mixed in. A
version's quality is the mean of its responses' overall scores, with each evaluator's mean
score, pass rate, errors and judge cost beside it, optionally per A/B variant.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.models import Evaluation
from gateway.errors import NotFound
from gateway.evaluations.feedback import ManualEvaluation, manual_row
from gateway.evaluations.records import EvaluationRecord, ResponseScore
from gateway.requestlog.query import RequestLogQuery

__all__ = [
    "EvaluationFilter",
    "EvaluationQuery",
    "EvaluatorSummary",
    "VersionSummary",
    "overall",
    "record_of",
]


@dataclass(slots=True)
class EvaluationFilter:
    request_id: str | None = None
    prompt: str | None = None
    version: int | None = None
    evaluator_key: str | None = None
    evaluator_id: str | None = None
    context: str | None = None
    passed: bool | None = None
    variant: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        columns = {
            "request_id": Evaluation.request_id,
            "prompt": Evaluation.prompt_slug,
            "version": Evaluation.prompt_version,
            "evaluator_key": Evaluation.evaluator_key,
            "evaluator_id": Evaluation.evaluator_config_id,
            "context": Evaluation.context,
            "variant": Evaluation.ab_variant,
        }
        conditions = [
            column == getattr(self, name)
            for name, column in columns.items()
            if getattr(self, name) is not None
        ]
        if self.passed is not None:
            conditions.append(Evaluation.passed.is_(self.passed))
        if self.since is not None:
            conditions.append(Evaluation.created_at >= self.since)
        if self.until is not None:
            conditions.append(Evaluation.created_at < self.until)
        return query.where(*conditions) if conditions else query


class EvaluatorSummary(msgspec.Struct, frozen=True, kw_only=True):
    evaluator_id: str | None
    evaluator_key: str
    evaluations: int
    mean_score: float | None
    pass_rate: float | None
    """Passed / evaluations that produced a score."""
    errors: int
    skipped: int
    cost_usd: Decimal | None


class VersionSummary(msgspec.Struct, frozen=True, kw_only=True):
    prompt: str | None
    version: int | None
    variant: str | None
    responses: int
    """Responses with at least one scored automatic evaluation."""
    overall_score: float | None
    """Mean of those responses' weighted mean scores."""
    evaluators: list[EvaluatorSummary]


def record_of(row: Evaluation) -> EvaluationRecord:
    return EvaluationRecord(
        id=row.id,
        request_id=row.request_id,
        request_log_id=row.request_log_id,
        evaluator_config_id=row.evaluator_config_id,
        context=row.context,
        test_run_id=row.test_run_id,
        prompt=row.prompt_slug,
        version=row.prompt_version,
        ab_variant=row.ab_variant,
        evaluator_key=row.evaluator_key,
        evaluator_version=row.evaluator_version,
        config=dict(row.config),
        weight=row.weight,
        threshold=row.threshold,
        score=row.score,
        passed=row.passed,
        skipped=row.skipped,
        error=row.error,
        details=dict(row.details),
        duration_ms=row.duration_ms,
        cost_usd=row.cost_usd,
        author=row.author,
        created_at=row.created_at,
    )


def _counts(record: EvaluationRecord) -> bool:
    return (
        record.context != "manual"
        and record.score is not None
        and not record.skipped
        and record.error is None
    )


def overall(records: list[EvaluationRecord]) -> tuple[float | None, bool | None]:
    """(weighted mean score, all passed) of the automatic evaluations that scored."""
    scored = [r for r in records if _counts(r)]
    weights = sum(r.weight for r in scored)
    if not scored:
        return None, None
    mean = sum(r.weight * (r.score or 0.0) for r in scored) / weights if weights > 0 else None
    return mean, all(bool(r.passed) for r in scored)


class EvaluationQuery:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._log = RequestLogQuery(sessions)

    async def search(
        self, filters: EvaluationFilter, *, limit: int, before_id: str | None
    ) -> list[EvaluationRecord]:
        query = filters.apply(select(Evaluation)).order_by(Evaluation.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(Evaluation.id < before_id)
        async with self._sessions() as session:
            return [record_of(row) for row in await session.scalars(query)]

    async def for_response(self, request_id: str) -> ResponseScore:
        row = await self._log.get(request_id)
        if row is None:
            raise NotFound(f"No logged request with id '{request_id}'.", param="request_id")
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Evaluation)
                .where(Evaluation.request_log_id == row.id)
                .order_by(Evaluation.id)
            )
            records = [record_of(r) for r in rows]
        score, passed = overall(records)
        return ResponseScore(
            request_id=row.request_id,
            request_log_id=row.id,
            overall_score=score,
            passed=passed,
            evaluations=records,
        )

    async def add_manual(self, request_id: str, feedback: ManualEvaluation) -> EvaluationRecord:
        row = await self._log.get(request_id)
        if row is None:
            raise NotFound(
                f"No logged request with id '{request_id}'. Rows are written within a second "
                "of the response; try again shortly.",
                param="request_id",
            )
        values = manual_row(row, feedback)
        async with self._sessions.begin() as session:
            evaluation = Evaluation(**values)
            session.add(evaluation)
            await session.flush()
            return record_of(evaluation)

    async def summary(
        self, filters: EvaluationFilter, *, by_variant: bool = False
    ) -> list[VersionSummary]:
        """Quality per prompt version (and A/B variant), automatic evaluations only."""
        groups = [Evaluation.prompt_slug, Evaluation.prompt_version]
        if by_variant:
            groups.append(Evaluation.ab_variant)
        automatic = filters.apply(select(Evaluation)).where(Evaluation.context != "manual")
        base = automatic.subquery()
        scored = (base.c.score.is_not(None)) & (base.c.error.is_(None)) & ~base.c.skipped
        per_evaluator = (
            select(
                *(base.c[g.key] for g in groups),
                base.c.evaluator_config_id,
                base.c.evaluator_key,
                func.count().label("evaluations"),
                func.avg(case((scored, base.c.score))).label("mean_score"),
                func.sum(case((scored & base.c.passed, 1), else_=0)).label("passed"),
                func.sum(case((scored, 1), else_=0)).label("scored"),
                func.sum(case((base.c.error.is_not(None), 1), else_=0)).label("errors"),
                func.sum(case((base.c.skipped, 1), else_=0)).label("skipped"),
                func.sum(base.c.cost_usd).label("cost_usd"),
            )
            .group_by(
                *(base.c[g.key] for g in groups), base.c.evaluator_config_id, base.c.evaluator_key
            )
            .order_by(*(base.c[g.key] for g in groups), base.c.evaluator_key)
        )
        weighted = func.sum(base.c.weight * base.c.score) / func.nullif(func.sum(base.c.weight), 0)
        per_response = (
            select(*(base.c[g.key] for g in groups), weighted.label("score"))
            .where(scored)
            .group_by(*(base.c[g.key] for g in groups), base.c.request_log_id)
            .subquery()
        )
        per_version = select(
            *(per_response.c[g.key] for g in groups),
            func.count().label("responses"),
            func.avg(per_response.c.score).label("overall"),
        ).group_by(*(per_response.c[g.key] for g in groups))
        async with self._sessions() as session:
            evaluator_rows = (await session.execute(per_evaluator)).all()
            version_rows = (await session.execute(per_version)).all()
        width = len(groups)
        overall_by: dict[tuple[Any, ...], tuple[int, float | None]] = {
            tuple(r[:width]): (int(r.responses), _float(r.overall)) for r in version_rows
        }
        evaluators: defaultdict[tuple[Any, ...], list[EvaluatorSummary]] = defaultdict(list)
        for r in evaluator_rows:
            scored_count = int(r.scored or 0)
            evaluators[tuple(r[:width])].append(
                EvaluatorSummary(
                    evaluator_id=r.evaluator_config_id,
                    evaluator_key=r.evaluator_key,
                    evaluations=int(r.evaluations),
                    mean_score=_float(r.mean_score),
                    pass_rate=int(r.passed or 0) / scored_count if scored_count else None,
                    errors=int(r.errors or 0),
                    skipped=int(r.skipped or 0),
                    cost_usd=Decimal(r.cost_usd) if r.cost_usd is not None else None,
                )
            )
        return [
            VersionSummary(
                prompt=key[0],
                version=key[1],
                variant=key[2] if by_variant else None,
                responses=overall_by.get(key, (0, None))[0],
                overall_score=overall_by.get(key, (0, None))[1],
                evaluators=items,
            )
            for key, items in evaluators.items()
        ]


def _float(value: Any) -> float | None:
    return None if value is None else round(float(value), 6)
