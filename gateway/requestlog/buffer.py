"""Writes the request log behind the response: a bounded buffer flushed in batches.

`add()` never waits and never raises: the response path only appends to a deque. A background
task writes batches with `INSERT ... ON CONFLICT DO NOTHING` on the row id, so a batch retried
after an ambiguous failure (commit sent, answer lost) is never written twice. While the
database is down rows stay in memory up to `max_rows`; past that new rows are dropped and
counted. `close()` flushes what is left.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import psycopg
from psycopg import sql
from sqlalchemy import JSON
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.models import RequestLog
from gateway.requestlog.entry import LogEntry

__all__ = ["RequestLogBuffer", "RequestLogWriter"]

log = logging.getLogger("sluice.requestlog")

Listener = Callable[[Sequence[LogEntry]], Awaitable[None]]


class RequestLogWriter:
    """Inserts batches of rows; idempotent per row id on both dialects.

    On Postgres a batch goes through COPY into a per-connection staging table and then one
    `INSERT ... SELECT ... ON CONFLICT DO NOTHING`: a third of the CPU of a multi-row INSERT
    with bound JSON parameters, which matters because the writer shares the event loop with
    the request path.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._statement = sqlite.insert(RequestLog).on_conflict_do_nothing(index_elements=["id"])
        self._json_columns = frozenset(
            column.key for column in RequestLog.__table__.columns if isinstance(column.type, JSON)
        )

    async def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if not self._postgres:
            async with self._engine.begin() as connection:
                await connection.execute(self._statement, rows)
            return
        columns = list(rows[0])
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        stage = sql.Identifier(_STAGE)
        json_positions = [i for i, name in enumerate(columns) if name in self._json_columns]
        async with self._engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
            async with driver.transaction(), driver.cursor() as cursor:
                await cursor.execute(_STAGE_TABLE)
                copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(stage, names)
                async with cursor.copy(copy_sql) as copy:
                    for row in rows:
                        values = list(row.values())
                        for i in json_positions:
                            if values[i] is not None:
                                values[i] = _encode_json(values[i]).decode()
                        await copy.write_row(values)
                await cursor.execute(
                    sql.SQL(
                        "INSERT INTO request_logs ({0}) SELECT {0} FROM {1} "
                        "ON CONFLICT (id) DO NOTHING"
                    ).format(names, stage)
                )


_STAGE = "sluice_request_log_stage"
# One per connection, emptied at each commit.
_STAGE_TABLE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
    "(LIKE request_logs INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_encode_json = msgspec.json.Encoder().encode


class RequestLogBuffer:
    def __init__(
        self,
        writer: RequestLogWriter,
        *,
        max_rows: int,
        batch_size: int,
        flush_interval: float,
        on_dropped: Callable[[int], None] = lambda n: None,
        on_flushed: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._writer = writer
        self._rows: deque[LogEntry] = deque()
        self._max_rows = max_rows
        self._batch_size = batch_size
        self._interval = flush_interval
        self._on_dropped = on_dropped
        self._on_flushed = on_flushed
        self._listeners: list[Listener] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.dropped = 0
        self._last_drop_log = 0.0
        self._database_down = False
        self._flush_lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def add_listener(self, listener: Listener) -> None:
        """Called with each batch after it is safely written (evaluations, budgets rebuild)."""
        self._listeners.append(listener)

    def add(self, entry: LogEntry) -> None:
        if len(self._rows) >= self._max_rows:
            self.dropped += 1
            self._on_dropped(1)
            now = time.monotonic()
            if now - self._last_drop_log > 10:
                self._last_drop_log = now
                log.error(
                    "request log buffer full (%d rows): dropped %d rows so far; "
                    "is the database reachable?",
                    self._max_rows,
                    self.dropped,
                )
            return
        self._rows.append(entry)
        if len(self._rows) >= self._batch_size:
            self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sluice-request-log")

    async def _run(self) -> None:
        backoff = self._interval
        while not self._closing:
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=backoff)
            except TimeoutError:
                pass
            self._wakeup.clear()
            if await self.flush():
                backoff = self._interval
            else:
                backoff = min(max(backoff * 2, 0.5), 5.0)

    async def flush(self) -> bool:
        """Write everything buffered; False when the database refused (rows are kept)."""
        async with self._flush_lock:  # one writer at a time: batches are popped after writing
            return await self._flush_locked()

    async def _flush_locked(self) -> bool:
        while self._rows:
            batch = [self._rows[i] for i in range(min(self._batch_size, len(self._rows)))]
            try:
                await self._writer.write([entry.as_row() for entry in batch])
            except Exception as exc:
                if not self._database_down:
                    self._database_down = True
                    log.error(
                        "request log write failed (%s); holding %d rows and retrying",
                        type(exc).__name__,
                        len(self._rows),
                    )
                return False
            if self._database_down:
                self._database_down = False
                log.warning("request log writes recovered")
            for _ in batch:
                self._rows.popleft()
            self._on_flushed(len(batch))
            for listener in self._listeners:
                try:
                    await listener(batch)
                except Exception:
                    log.exception("request log listener failed")
        return True

    async def close(self, timeout: float = 10.0) -> None:
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=timeout)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        deadline = time.monotonic() + timeout
        while self._rows and time.monotonic() < deadline:
            if not await self.flush():
                await asyncio.sleep(0.2)
        if self._rows:
            log.error("shutting down with %d request log rows unwritten", len(self._rows))
