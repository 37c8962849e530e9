"""Test runs as the admin API sees them: start, read, list, results, cancel, compare.

Starting plans the run (checks and budget holds, `planning`) and hands it to this process's
engine at once, so the answer (202) comes before the first case is sent.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.models import TestResult, TestRun
from gateway.errors import Conflict, InvalidRequest, NotFound
from gateway.testsuites.compare import compare_runs
from gateway.testsuites.engine import RunEngine
from gateway.testsuites.planning import RunPlanner
from gateway.testsuites.records import ACTIVE, Comparison, RunRecord, TestResultRecord
from gateway.testsuites.specs import RunRequest

__all__ = ["TestRunService", "result_record", "run_record"]


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


def run_record(row: TestRun, comparison: Comparison | None = None) -> RunRecord:
    selection = dict(row.selection or {})
    selection.pop("stamp", None)
    return RunRecord(
        id=row.id,
        status=row.status,
        prompt=row.prompt_slug,
        version=row.version,
        label=row.label,
        model=row.model,
        model_override=row.model_override,
        tests=selection,
        concurrency=row.concurrency,
        budget_id=row.budget_id,
        schedule_id=row.schedule_id,
        total=row.total,
        completed=row.completed,
        passed=row.passed,
        failed=row.failed,
        errored=row.errored,
        pass_rate=row.passed / row.completed if row.completed else None,
        mean_score=row.mean_score,
        cost_usd=float(row.cost_usd or 0),
        estimated_cost_usd=float(row.estimate_usd or 0),
        gate=(row.passed == row.total) if row.status == "completed" else None,
        error=row.error,
        cancel_requested=row.cancel_requested,
        starts=row.starts,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_s=_seconds(row.started_at, row.finished_at),
        comparison=comparison,
    )


def result_record(row: TestResult) -> TestResultRecord:
    return TestResultRecord(
        id=row.id,
        run_id=row.run_id,
        test_case_id=row.test_case_id,
        position=row.position,
        name=row.case_name,
        status=row.status,
        output=row.output,
        score=row.score,
        passed=row.passed,
        latency_ms=row.latency_ms,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cost_usd=float(row.cost_usd) if row.cost_usd is not None else None,
        attempts=row.attempts,
        error=row.error,
        request_id=row.request_id,
        evaluations=list(row.evaluations or []),
        expected_output=row.expected_output,
        finished_at=row.finished_at,
    )


class TestRunService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        planner: RunPlanner,
        engine: RunEngine,
    ) -> None:
        self._sessions = sessions
        self.planner = planner
        self.engine = engine

    async def start(self, request: RunRequest, *, schedule_id: str | None = None) -> RunRecord:
        planned = await self.planner.plan(request, schedule_id=schedule_id)
        claimed = await self.engine.claim(planned.run.id)
        if claimed is None:  # another process's supervisor was quicker: it runs it
            await self.planner.release(planned.holds, planned.route)
            return await self.get(planned.run.id)
        self.engine.start(claimed, planned.holds, planned.route)
        return run_record(claimed)

    async def _row(self, session: AsyncSession, run_id: str) -> TestRun:
        row = await session.get(TestRun, run_id)
        if row is None:
            raise NotFound(f"No test run with id '{run_id}'.", param="id")
        return row

    async def get(self, run_id: str, *, compare_to: str | None = None) -> RunRecord:
        async with self._sessions() as session:
            row = await self._row(session, run_id)
        comparison = await self.compare(run_id, compare_to) if compare_to else None
        return run_record(row, comparison)

    async def list_runs(
        self,
        *,
        limit: int,
        after: str | None = None,
        prompt: str | None = None,
        status: str | None = None,
        schedule_id: str | None = None,
    ) -> list[RunRecord]:
        query = select(TestRun).order_by(TestRun.id.desc()).limit(limit)
        if after:
            query = query.where(TestRun.id < after)
        if prompt:
            query = query.where(TestRun.prompt_slug == prompt)
        if status:
            query = query.where(TestRun.status == status)
        if schedule_id:
            query = query.where(TestRun.schedule_id == schedule_id)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [run_record(row) for row in rows]

    async def results(
        self, run_id: str, *, limit: int = 10_000, after: int | None = None
    ) -> list[TestResultRecord]:
        query = (
            select(TestResult)
            .where(TestResult.run_id == run_id)
            .order_by(TestResult.position)
            .limit(limit)
        )
        if after is not None:
            query = query.where(TestResult.position > after)
        async with self._sessions() as session:
            await self._row(session, run_id)
            rows = (await session.scalars(query)).all()
        return [result_record(row) for row in rows]

    async def cancel(self, run_id: str) -> RunRecord:
        async with self._sessions.begin() as session:
            row = await self._row(session, run_id)
            if row.status not in ACTIVE:
                raise Conflict(
                    f"Test run '{run_id}' is already {row.status}: only pending or running runs "
                    "can be cancelled.",
                    param="id",
                )
            values: dict[str, object] = {"cancel_requested": True}
            if row.status == "pending" and row.owner is None:
                values["status"] = "cancelled"  # no process has it: nothing else will
            await session.execute(update(TestRun).where(TestRun.id == run_id).values(**values))
        self.engine.cancel_local(run_id)
        return await self.get(run_id)

    async def compare(self, run_id: str, baseline_id: str) -> Comparison:
        if run_id == baseline_id:
            raise InvalidRequest("Compare a run with another run.", param="compare_to")
        async with self._sessions() as session:
            run = await self._row(session, run_id)
            baseline = await self._row(session, baseline_id)
        return compare_runs(
            run_record(run),
            await self.results(run_id),
            run_record(baseline),
            await self.results(baseline_id),
        )
