"""Keeping the request log in shape: partitions made ahead (Postgres) and retention.

Every gateway process runs this every `interval` seconds (and once at start), so the
embedded default needs no worker; on Postgres several processes may run it at once, which is
safe: `sluice_request_log_partition` (migration 0007) serialises creators and retention runs
under a session advisory lock only one holder gets.

Partitions: one per UTC day, made `DAYS_AHEAD` days ahead. A row for a day without one lands
in the default partition and moves into its day's partition when that is made; days the
default partition holds get theirs at the next run.

Retention (`SLUICE_LOG_RETENTION_DAYS`, 0 = keep forever) keeps whole UTC days: with N days,
rows from before midnight N days ago go. Postgres drops whole day partitions (no row-by-row
delete, no bloat) and deletes the default partition's old rows and the old ids in bounded
batches; SQLite deletes old rows in bounded batches, each its own short transaction so the
writer is never locked out for long. Evaluations of deleted rows go with them (foreign key
cascade) and so do the rollup days.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.clock import Clock, system_clock

__all__ = ["DAYS_AHEAD", "LogMaintenance", "MaintenanceReport"]

log = logging.getLogger("sluice.requestlog")

DAYS_AHEAD = 3
DELETE_BATCH = 5_000
_PARTITION_PREFIX = "request_logs_p"
_RETENTION_LOCK = 0x51C3_0007  # pg_try_advisory_lock key: one retention run at a time


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    partitions_created: int = 0
    partitions_dropped: int = 0
    rows_deleted: int = 0


class LogMaintenance:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        retention_days: int,
        clock: Clock = system_clock,
        interval: float = 3600.0,
        batch: int = DELETE_BATCH,
    ) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._retention_days = retention_days
        self._clock = clock
        self._interval = interval
        self._batch = batch
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="sluice-request-log-maintenance")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                # The log keeps working without it (default partition, rows kept longer).
                log.exception("request log maintenance failed; retrying in %.0f s", self._interval)
            await asyncio.sleep(self._interval)

    async def run_once(self) -> MaintenanceReport:
        today = self._clock().astimezone(UTC).date()
        cutoff = today - timedelta(days=self._retention_days) if self._retention_days else None
        created = await self.make_partitions(today, cutoff) if self._postgres else 0
        if cutoff is None:
            return MaintenanceReport(partitions_created=created)
        dropped, deleted = await self.apply_retention(cutoff)
        if dropped or deleted:
            log.info(
                "request log retention (%d days): dropped %d partitions, deleted %d rows "
                "older than %s",
                self._retention_days,
                dropped,
                deleted,
                cutoff.isoformat(),
            )
        return MaintenanceReport(created, dropped, deleted)

    async def make_partitions(self, today: date, cutoff: date | None = None) -> int:
        """Partitions for today and the next days, and for any day the default partition
        holds (not older than the retention cutoff); returns how many were made."""
        async with self._engine.connect() as connection:
            held = await connection.execute(
                text(
                    "SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date "
                    "FROM request_logs_default"
                )
            )
            days = {today + timedelta(days=n) for n in range(DAYS_AHEAD + 1)}
            days |= {day for (day,) in held if cutoff is None or day >= cutoff}
            await connection.rollback()
        created = 0
        for day in sorted(days):
            async with self._engine.begin() as connection:
                made = await connection.scalar(
                    text("SELECT sluice_request_log_partition(:day)"), {"day": day}
                )
                created += bool(made)
        return created

    async def apply_retention(self, cutoff: date) -> tuple[int, int]:
        """Remove rows from before `cutoff` (a UTC day); returns (partitions dropped, rows
        deleted one by one)."""
        before = datetime.combine(cutoff, time(), UTC)
        if not self._postgres:
            deleted = await self._delete_in_batches(
                "DELETE FROM request_logs WHERE id IN (SELECT id FROM request_logs "
                "WHERE created_at < :before LIMIT :batch)",
                # SQLite stores naive UTC text; compared as text, the same format sorts right.
                before.strftime("%Y-%m-%d %H:%M:%S"),
            )
            await self._forget_rollup_days(cutoff)
            return 0, deleted
        async with self._engine.connect() as lock:
            if not await lock.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": _RETENTION_LOCK}
            ):
                return 0, 0  # another process is at it
            try:
                dropped = await self._drop_partitions(cutoff)
                # Through the parent, so its delete trigger keeps the rollup and ids in step.
                deleted = await self._delete_in_batches(
                    "DELETE FROM request_logs WHERE (id, created_at) IN (SELECT id, created_at "
                    "FROM request_logs_default WHERE created_at < :before LIMIT :batch)",
                    before,
                )
                # Dropped partitions fire no trigger: their ids (and, by cascade, evaluations).
                await self._delete_in_batches(
                    "DELETE FROM request_log_ids WHERE log_id IN (SELECT log_id "
                    "FROM request_log_ids WHERE created_at < :before LIMIT :batch)",
                    before,
                )
                await self._forget_rollup_days(cutoff)
            finally:
                await lock.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": _RETENTION_LOCK}
                )
                await lock.commit()
        return dropped, deleted

    async def _drop_partitions(self, cutoff: date) -> int:
        async with self._engine.connect() as connection:
            names = await _partitions(connection)
            await connection.rollback()
        old = [name for name, day in names if day < cutoff]
        for name in old:
            async with self._engine.begin() as connection:
                await connection.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
        return len(old)

    async def _delete_in_batches(self, statement: str, before: datetime | str) -> int:
        total = 0
        while True:
            async with self._engine.begin() as connection:
                result = await connection.execute(
                    text(statement), {"before": before, "batch": self._batch}
                )
            count = result.rowcount or 0
            total += count
            if count < self._batch:
                return total

    async def _forget_rollup_days(self, cutoff: date) -> None:
        day = cutoff.isoformat()
        async with self._engine.begin() as connection:
            await connection.execute(
                text("DELETE FROM request_log_daily WHERE day < :day"), {"day": day}
            )
            await connection.execute(
                text("DELETE FROM evaluation_model_hourly WHERE log_hour < :day"), {"day": day}
            )
            # Kept by the evaluations' delete trigger already; this only tidies up.
            await connection.execute(
                text("DELETE FROM evaluation_prompt_daily WHERE day < :day"), {"day": day}
            )


async def _partitions(connection: AsyncConnection) -> list[tuple[str, date]]:
    """The day partitions of the log, by the day in their name."""
    rows = await connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'request_logs'::regclass"
        )
    )
    found = []
    for (name,) in rows:
        if name.startswith(_PARTITION_PREFIX):
            with contextlib.suppress(ValueError):
                found.append(
                    (name, datetime.strptime(name[len(_PARTITION_PREFIX) :], "%Y%m%d").date())
                )
    return found
