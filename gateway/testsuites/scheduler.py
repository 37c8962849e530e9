"""The scheduler loop: every interval, fire the schedules that are due (see `schedules`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.testsuites.schedules import ScheduleService

__all__ = ["Scheduler"]

log = logging.getLogger("sluice.testing")


class Scheduler:
    def __init__(self, schedules: ScheduleService, *, interval: float) -> None:
        self._schedules = schedules
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="sluice-test-scheduler")

    async def _loop(self) -> None:
        while True:
            try:
                await self._schedules.fire_due()
            except Exception as exc:
                log.warning("firing due schedules failed: %s", exc)
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
