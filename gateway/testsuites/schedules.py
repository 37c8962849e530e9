"""Schedules: write them (cron checked, next run computed), trigger them, fire the due ones.

Firing is guarded by the schedule row itself: a scheduler moves `next_run_at` forward with
`UPDATE ... WHERE next_run_at = <the value it read>` and starts a run only when its update
won, so with several workers (and after restarts) each due time yields exactly one run.
"""

from __future__ import annotations

import logging
from datetime import datetime

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.clock import Clock
from gateway.db.base import utcnow
from gateway.db.models import Schedule
from gateway.errors import InvalidRequest, NotFound, SluiceError
from gateway.ids import new_id
from gateway.testsuites.cases import prompt_by_slug
from gateway.testsuites.cron import check_cron, next_fire
from gateway.testsuites.planning import msgspec_dict
from gateway.testsuites.records import RunRecord, ScheduleRecord
from gateway.testsuites.runs import TestRunService
from gateway.testsuites.specs import CaseSelection, RunRequest, ScheduleCreate, SchedulePatch

__all__ = ["ScheduleService"]

log = logging.getLogger("sluice.testing")


def _record(row: Schedule) -> ScheduleRecord:
    return ScheduleRecord(
        id=row.id,
        prompt=row.prompt_slug,
        version=row.version,
        label=row.label,
        cron=row.cron,
        model_override=row.model_override,
        tests=dict(row.selection or {}),
        concurrency=row.concurrency,
        budget_id=row.budget_id,
        enabled=row.enabled,
        max_score_drop=row.max_score_drop,
        last_run_at=row.last_run_at,
        last_run_id=row.last_run_id,
        next_run_at=row.next_run_at if row.enabled else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _request(row: Schedule) -> RunRequest:
    selection = row.selection or {}
    tests = None
    if selection.get("ids") or selection.get("tags"):
        tests = CaseSelection(ids=list(selection.get("ids", [])), tags=selection.get("tags", []))
    return RunRequest(
        prompt=row.prompt_slug,
        version=row.version,
        label=row.label,
        model_override=row.model_override,
        tests=tests,
        concurrency=row.concurrency,
        budget_id=row.budget_id,
    )


class ScheduleService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        runs: TestRunService,
        *,
        default_drop: float,
        clock: Clock = utcnow,
    ) -> None:
        self._sessions = sessions
        self._runs = runs
        self._default_drop = default_drop
        self.clock = clock

    async def create(self, spec: ScheduleCreate) -> ScheduleRecord:
        if spec.version is not None and spec.label is not None:
            raise InvalidRequest("Give a version or a label, not both.", param="label")
        cron = check_cron(spec.cron)
        now = self.clock()
        async with self._sessions.begin() as session:
            prompt = await prompt_by_slug(session, spec.prompt)
            row = Schedule(
                id=new_id(),
                prompt_id=prompt.id,
                prompt_slug=prompt.slug,
                version=spec.version,
                label=spec.label,
                cron=cron,
                model_override=spec.model_override,
                selection=msgspec_dict(spec.tests) if spec.tests else {},
                concurrency=spec.concurrency,
                budget_id=spec.budget_id,
                enabled=spec.enabled,
                max_score_drop=spec.max_score_drop or self._default_drop,
                next_run_at=next_fire(cron, now),
                created_at=now,
                updated_at=now,
            )
            session.add(row)
        return _record(row)

    async def _row(self, session: AsyncSession, schedule_id: str) -> Schedule:
        row = await session.get(Schedule, schedule_id)
        if row is None:
            raise NotFound(f"No schedule with id '{schedule_id}'.", param="id")
        return row

    async def get(self, schedule_id: str) -> ScheduleRecord:
        async with self._sessions() as session:
            return _record(await self._row(session, schedule_id))

    async def list_schedules(
        self, *, limit: int, after: str | None = None, prompt: str | None = None
    ) -> list[ScheduleRecord]:
        query = select(Schedule).order_by(Schedule.id).limit(limit)
        if after:
            query = query.where(Schedule.id > after)
        if prompt:
            query = query.where(Schedule.prompt_slug == prompt)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [_record(row) for row in rows]

    async def update(self, schedule_id: str, patch: SchedulePatch) -> ScheduleRecord:
        changes = {
            name: getattr(patch, name)
            for name in SchedulePatch.__struct_fields__
            if getattr(patch, name) is not msgspec.UNSET
        }
        async with self._sessions.begin() as session:
            row = await self._row(session, schedule_id)
            if "tests" in changes:
                tests = changes.pop("tests")
                changes["selection"] = msgspec_dict(tests) if tests else {}
            if "cron" in changes:
                changes["cron"] = check_cron(changes["cron"])
            for name, value in changes.items():
                setattr(row, name, value)
            if row.version is not None and row.label is not None:
                raise InvalidRequest("Give a version or a label, not both.", param="label")
            if "cron" in changes or changes.get("enabled"):
                row.next_run_at = next_fire(row.cron, self.clock())
            row.updated_at = self.clock()
            return _record(row)

    async def delete(self, schedule_id: str) -> ScheduleRecord:
        async with self._sessions.begin() as session:
            row = await self._row(session, schedule_id)
            record = _record(row)
            await session.delete(row)
        return record

    async def trigger(self, schedule_id: str) -> RunRecord:
        """Run the schedule now; its regular times are unchanged."""
        async with self._sessions() as session:
            row = await self._row(session, schedule_id)
        return await self._runs.start(_request(row), schedule_id=row.id)

    async def fire_due(self) -> list[str]:
        """Start a run for every enabled schedule that is due and that this caller wins."""
        now = self.clock()
        async with self._sessions() as session:
            due = list(
                (
                    await session.scalars(
                        select(Schedule).where(
                            Schedule.enabled.is_(True), Schedule.next_run_at <= now
                        )
                    )
                ).all()
            )
        started = []
        for row in due:
            if not await self._advance(row, now):
                continue  # another scheduler fired it
            try:
                run = await self._runs.start(_request(row), schedule_id=row.id)
            except SluiceError as exc:
                log.warning("schedule %s could not start a run: %s", row.id, exc.message)
                continue
            started.append(run.id)
        return started

    async def _advance(self, row: Schedule, now: datetime) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Schedule)
                .where(Schedule.id == row.id, Schedule.next_run_at == row.next_run_at)
                .values(next_run_at=next_fire(row.cron, now), last_run_at=now)
            )
        return getattr(result, "rowcount", 0) == 1
