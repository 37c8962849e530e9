"""Writes the request log behind the response: a bounded buffer flushed in batches.

`add()` never waits and never raises: the response path only appends to a deque. A background
task writes batches with `INSERT ... ON CONFLICT (id) DO NOTHING` on the row id, so a batch
retried after an ambiguous failure (commit sent, answer lost) is never written twice. While the
database is down rows stay in memory up to `max_rows`; past that new rows are dropped and
counted.

No row blocks the others: rows are made storable first (`storable.py`), and a batch the
database refuses for its content (a data or integrity error, not an outage) is split in halves
until the refused rows are alone; those become dead letters (`deadletter.py`), the rest is
written. `close()` flushes what is left and dead-letters what it could not write.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import psycopg
from psycopg import sql
from sqlalchemy import JSON, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db.models import RequestLog
from gateway.requestlog.deadletter import DeadLetters, error_text
from gateway.requestlog.entry import LogEntry

__all__ = ["RequestLogBuffer", "RequestLogWriter", "is_row_fault", "unique_request_ids"]

log = logging.getLogger("sluice.requestlog")

Listener = Callable[[Sequence[LogEntry]], Awaitable[None]]


def unique_request_ids(rows: list[dict[str, Any]], taken: dict[str, str]) -> list[dict[str, Any]]:
    """Rows whose request id another row holds get `<id, cut>~<row id>` instead.

    `taken` maps the request ids already stored to their row ids. A caller may reuse its
    X-Sluice-Request-Id; the first row keeps it, and '~' (never valid in the header) makes
    the later ones unique and recognisable. A row retried after an ambiguous failure finds
    itself in `taken` and keeps its id, so ON CONFLICT (id) still skips it.
    """
    out = []
    for row in rows:
        request_id, row_id = row["request_id"], row["id"]
        owner = taken.setdefault(request_id, row_id)
        if owner != row_id:
            keep = _REQUEST_ID_LENGTH - len(row_id) - 1
            row = {**row, "request_id": f"{request_id[:keep]}~{row_id}"}
        out.append(row)
    return out


def _renamed(rows: list[dict[str, Any]]) -> dict[str, str]:
    return {row["id"]: row["request_id"] for row in rows if "~" in row["request_id"]}


_REQUEST_ID_LENGTH = 128
_LOOKUP_CHUNK = 500  # below SQLite's bound-parameter limit


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

    async def write(self, rows: list[dict[str, Any]]) -> dict[str, str]:
        """Store `rows`; returns the request id given instead to each row whose id was reused."""
        if not rows:
            return {}
        if not self._postgres:
            async with self._engine.begin() as connection:
                stored = await self._taken(connection, rows)
                rows = unique_request_ids(rows, stored)
                await connection.execute(self._statement, rows)
            return _renamed(rows)
        columns = list(rows[0])
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        stage = sql.Identifier(_STAGE)
        json_positions = [i for i, name in enumerate(columns) if name in self._json_columns]
        async with self._engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
            async with driver.transaction(), driver.cursor() as cursor:
                await cursor.execute(
                    "SELECT request_id, id FROM request_logs WHERE request_id = ANY(%s)",
                    [list({row["request_id"] for row in rows})],
                )
                taken: dict[str, str] = dict(await cursor.fetchall())
                rows = unique_request_ids(rows, taken)
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
        return _renamed(rows)

    async def _taken(
        self, connection: AsyncConnection, rows: list[dict[str, Any]]
    ) -> dict[str, str]:
        wanted = list({row["request_id"] for row in rows})
        taken: dict[str, str] = {}
        for start in range(0, len(wanted), _LOOKUP_CHUNK):
            query = select(RequestLog.request_id, RequestLog.id).where(
                RequestLog.request_id.in_(wanted[start : start + _LOOKUP_CHUNK])
            )
            taken.update(
                (request_id, row_id) for request_id, row_id in await connection.execute(query)
            )
        return taken


# What a row's own content makes the database (or the driver, encoding it) refuse. Anything
# else (connection lost, read-only database, lock timeout, missing table) is the database's
# state: the batch is kept and retried rather than dead-lettered row by row.
_ROW_FAULTS = (
    psycopg.DataError,
    psycopg.IntegrityError,
    sqlite3.DataError,
    sqlite3.IntegrityError,
    ValueError,
    TypeError,
    OverflowError,
    msgspec.MsgspecError,
)


def is_row_fault(exc: BaseException) -> bool:
    cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    return isinstance(cause, _ROW_FAULTS)


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
        dead_letters: DeadLetters,
        on_dropped: Callable[[int], None] = lambda n: None,
        on_flushed: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._writer = writer
        self._dead_letters = dead_letters
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
        self._last_error = ""
        self._flush_lock = asyncio.Lock()
        # Since when rows have waited with no write: when the buffer filled from empty, or the
        # last write that left rows behind. None while empty.
        self._waiting_since: float | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def waiting_for(self) -> float:
        """Seconds rows have waited without a successful write; 0 while nothing waits."""
        if self._waiting_since is None or not self._rows:
            return 0.0
        return time.monotonic() - self._waiting_since

    @property
    def last_error_kind(self) -> str:
        """The exception type of the last failed write ("" once writes succeed again); the
        text, which may quote values, is only logged."""
        return self._last_error.split(":", 1)[0]

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
        if not self._rows:
            self._waiting_since = time.monotonic()
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
            renamed: dict[str, str] = {}
            try:
                refused = await self._write_splitting([entry.as_row() for entry in batch], renamed)
            except Exception as exc:
                self._last_error = error_text(exc)
                if not self._database_down:
                    self._database_down = True
                    log.error(
                        "request log write failed (%s); holding %d rows and retrying",
                        self._last_error,
                        len(self._rows),
                    )
                return False
            if refused:
                await self._dead_letters.store(refused)
                log.error(
                    "request log: %d of %d rows refused by the database, kept as dead letters "
                    "(row %s: %s)",
                    len(refused),
                    len(batch),
                    refused[0][0].get("id"),
                    refused[0][1],
                )
            if self._database_down:
                self._database_down = False
                log.warning("request log writes recovered")
            self._last_error = ""
            for _ in batch:
                self._rows.popleft()
            self._waiting_since = time.monotonic() if self._rows else None
            refused_ids = {row.get("id") for row, _ in refused}
            written = [entry for entry in batch if entry.id not in refused_ids]
            for entry in written:  # listeners (evaluations) refer to the row by its stored id
                entry.request_id = renamed.get(entry.id, entry.request_id)
            self._on_flushed(len(written))
            for listener in self._listeners:
                try:
                    await listener(written)
                except Exception:
                    log.exception("request log listener failed")
        return True

    async def _write_splitting(
        self, rows: list[dict[str, Any]], renamed: dict[str, str]
    ) -> list[tuple[dict[str, Any], str]]:
        """Write `rows`, bisecting around the ones refused for their content; those are returned.

        A batch with k bad rows costs about 2k·log2(n) writes, and only when it fails.
        """
        try:
            renamed.update(await self._writer.write(rows))
            return []
        except Exception as exc:
            if not is_row_fault(exc):
                raise
            if len(rows) == 1:
                return [(rows[0], error_text(exc))]
        middle = len(rows) // 2
        return await self._write_splitting(rows[:middle], renamed) + await self._write_splitting(
            rows[middle:], renamed
        )

    async def close(self, timeout: float = 10.0) -> None:
        """Flush for up to `timeout` seconds; rows still unwritten go to the dead-letter file."""
        self._closing = True
        self._wakeup.set()
        deadline = time.monotonic() + timeout
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=timeout)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        while self._rows and time.monotonic() < deadline:
            try:
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.01)):
                    if not await self.flush():
                        await asyncio.sleep(0.2)
            except TimeoutError:
                break
        if not self._rows:
            return
        rows = [entry.as_row() for entry in self._rows]
        reason = (
            f"not written before shutdown within {timeout:g}s"
            f" (last error: {self._last_error or 'none'})"
        )
        self._rows.clear()
        self._waiting_since = None
        log.error(
            "shutting down with %d request log rows unwritten: dead-lettering them", len(rows)
        )
        # The database did not take these rows in time: straight to the file, not the table.
        await self._dead_letters.store([(row, reason) for row in rows], file_only=True)
