"""Writing evaluations, idempotently, and reading what a job needs to run.

`insert` is `INSERT ... ON CONFLICT DO NOTHING` on (request_log_id, evaluator_config_id) on
both dialects: a job delivered twice, a sweep racing the inline path, or a batch retried after
an ambiguous commit all leave exactly one evaluation per response and config. The first
result written stands.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from evaluators import EvaluationResult, SpecOutcome
from gateway.db.base import utcnow
from gateway.db.models import Evaluation, RequestLog
from gateway.evaluations.inputs import ResponseFacts
from gateway.evaluations.plans import OwnerPlan
from gateway.evaluations.records import Context
from gateway.ids import new_id

__all__ = ["EvaluationStore", "result_of"]

INSERT_CHUNK = 100

# Only what a later run needs to honour dependencies on an earlier result.
_PRIOR_COLUMNS = (
    Evaluation.request_log_id,
    Evaluation.evaluator_config_id,
    Evaluation.score,
    Evaluation.passed,
    Evaluation.skipped,
    Evaluation.error,
)


def result_of(
    score: float | None, passed: bool | None, skipped: bool, error: str | None
) -> EvaluationResult:
    """A stored evaluation as the library's result (for `prior` in a later run)."""
    return EvaluationResult(
        score=score if score is not None else 0.0,
        passed=bool(passed),
        skipped=skipped,
        error=error,
    )


class EvaluationStore:
    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._engine = engine
        self._sessions = sessions
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._insert = insert(Evaluation).on_conflict_do_nothing(
            index_elements=["request_log_id", "evaluator_config_id"]
        )

    def rows_for(
        self,
        facts: ResponseFacts,
        plan: OwnerPlan,
        outcomes: Iterable[SpecOutcome],
        *,
        context: Context = "production",
        test_run_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """The rows recording `outcomes` of `plan` on one response."""
        now = utcnow()
        rows = []
        for outcome in outcomes:
            spec, result = outcome.spec, outcome.result
            scored = not result.skipped and result.error is None
            rows.append(
                {
                    "id": new_id(),
                    "request_log_id": facts.log_id,
                    "request_id": facts.request_id,
                    "evaluator_config_id": spec.id,
                    "context": context,
                    "test_run_id": test_run_id,
                    "prompt_slug": facts.prompt_slug,
                    "prompt_version": facts.prompt_version,
                    "prompt_version_id": facts.prompt_version_id,
                    "ab_test_id": facts.ab_test_id,
                    "ab_variant": facts.ab_variant,
                    "evaluator_key": spec.evaluator_key,
                    "evaluator_version": plan.versions.get(spec.id, "?"),
                    "config": dict(spec.config),
                    "weight": spec.weight,
                    "threshold": spec.threshold,
                    "score": result.score if scored else None,
                    "passed": result.passed,
                    "skipped": result.skipped,
                    "error": result.error,
                    "details": dict(result.details),
                    "duration_ms": round(outcome.duration_ms, 3),
                    "cost_usd": result.cost_usd or None,
                    "author": None,
                    "created_at": now,
                }
            )
        return rows

    async def insert(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        async with self._engine.begin() as connection:
            # Binding parameters is CPU the event loop waits for (~25 µs a row): statements of
            # a bounded size let requests in between.
            for start in range(0, len(rows), INSERT_CHUNK):
                await connection.execute(self._insert, list(rows[start : start + INSERT_CHUNK]))

    async def responses(self, log_ids: Sequence[str]) -> dict[str, ResponseFacts]:
        """The logged responses with these row ids (missing ones are absent)."""
        if not log_ids:
            return {}
        async with self._sessions() as session:
            rows = await session.scalars(select(RequestLog).where(RequestLog.id.in_(log_ids)))
            return {row.id: ResponseFacts.from_row(row) for row in rows}

    async def prior_results(self, log_ids: Sequence[str]) -> dict[str, dict[str, EvaluationResult]]:
        """Results already stored, by response and config: dependencies read them, and a
        config with one is not run again."""
        found: dict[str, dict[str, EvaluationResult]] = {log_id: {} for log_id in log_ids}
        if not log_ids:
            return found
        async with self._sessions() as session:
            rows = await session.execute(
                select(*_PRIOR_COLUMNS).where(
                    Evaluation.request_log_id.in_(log_ids),
                    Evaluation.evaluator_config_id.is_not(None),
                )
            )
            for log_id, config_id, score, passed, skipped, error in rows:
                if config_id is not None:
                    found[log_id][config_id] = result_of(score, passed, skipped, error)
        return found
