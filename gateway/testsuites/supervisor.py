"""Finding runs no live process is running, and taking them up in this one.

Every process with the testing capability looks every heartbeat for runs that are `pending`
with no owner (their creator stopped before starting them, or handed them back when it shut
down) or `running` with a stale heartbeat (their process died). Claiming is one conditional
UPDATE, so of several processes exactly one resumes a run; results already recorded stand and
only the pending cases are sent. The engine fails a run that was taken up too many times.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.base import utcnow
from gateway.db.models import TestRun
from gateway.settings import TestRunSettings
from gateway.testsuites.engine import RunEngine

__all__ = ["RunSupervisor"]

log = logging.getLogger("sluice.testing")


class RunSupervisor:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        engine: RunEngine,
        settings: TestRunSettings,
    ) -> None:
        self._sessions = sessions
        self._engine = engine
        self._settings = settings
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> list[str]:
        """Take up every orphaned run; the ids taken."""
        now = utcnow()
        stale = now - timedelta(seconds=self._settings.stale_after)
        # Give a run's creator a moment to start it itself (it holds the run's budget).
        fresh = now - timedelta(seconds=max(2 * self._settings.heartbeat, 1.0))
        query = select(TestRun.id).where(
            ((TestRun.status == "pending") & TestRun.owner.is_(None) & (TestRun.created_at < fresh))
            | (TestRun.status.in_(("pending", "running")) & (TestRun.heartbeat_at < stale))
        )
        async with self._sessions() as session:
            candidates = list((await session.scalars(query.limit(20))).all())
        taken = []
        for run_id in candidates:
            if self._engine.is_running(run_id):
                continue
            run = await self._engine.claim(run_id, stale_before=stale)
            if run is None:
                continue
            log.warning("taking up test run %s (start %d)", run_id, run.starts)
            self._engine.start(run)
            taken.append(run_id)
        return taken

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception as exc:
                log.warning("looking for orphaned test runs failed: %s", exc)
            await asyncio.sleep(self._settings.heartbeat)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="sluice-test-run-supervisor")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
