"""The request log's flush works in steps that hand the event loop back, and still writes
every row once; the gateway's start-up heap is kept out of later garbage collections."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import event, select

from gateway.db.base import utcnow
from gateway.db.engine import create_engine
from gateway.db.models import RequestLog
from gateway.ids import new_id
from gateway.requestlog.buffer import RequestLogBuffer, RequestLogWriter
from gateway.requestlog.deadletter import DeadLetters
from gateway.requestlog.entry import LogEntry
from gateway.requestlog.pacing import Pacer
from gateway.serving import settle_heap
from tests.conftest import RunningGateway

ROWS = 120


class LoopTurns:
    """How many times the event loop has turned since `counting()` began."""

    def __init__(self) -> None:
        self.count = 0

    async def _tick(self) -> None:
        while True:
            self.count += 1
            await asyncio.sleep(0)

    @asynccontextmanager
    async def counting(self) -> AsyncIterator[LoopTurns]:
        task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        try:
            yield self
        finally:
            task.cancel()


TURNS = LoopTurns()


class TracedEntry(LogEntry, kw_only=True):
    """A log entry that notes the loop turn in which it was made storable."""

    converted_at: list[int] = msgspec.field(default_factory=list)

    def as_row(self) -> dict[str, Any]:
        self.converted_at.append(TURNS.count)
        row = super().as_row()
        del row["converted_at"]
        return row


def _entry(cls: type[LogEntry] = LogEntry) -> Any:
    rid = new_id()
    return cls(
        id=rid,
        request_id=rid,
        created_at=utcnow(),
        endpoint="chat.completions",
        status_code=200,
        tags={"team": "a"},
        request_body={"messages": [{"role": "user", "content": "hi"}]},
        response_body={"choices": [{"message": {"content": "hello"}}]},
    )


async def _stored_ids(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return list(await connection.scalars(select(RequestLog.id)))
    finally:
        await engine.dispose()


async def test_a_flush_makes_rows_storable_one_step_at_a_time_and_writes_each_once(
    database_url: str, tmp_path: Path
) -> None:
    """With a zero step the loop turns between any two rows; three batches, none lost or
    written twice."""
    engine = create_engine(database_url)
    buffer = RequestLogBuffer(
        RequestLogWriter(engine, step_seconds=0),
        max_rows=1000,
        batch_size=ROWS // 3,
        flush_interval=60,
        dead_letters=DeadLetters(engine, tmp_path / "dead.jsonl"),
        step_seconds=0,
    )
    entries = [_entry(TracedEntry) for _ in range(ROWS)]
    for entry in entries:
        buffer.add(entry)
    async with TURNS.counting():
        assert await buffer.flush()
    await buffer.close()
    await engine.dispose()
    turns = [entry.converted_at[0] for entry in entries]
    assert all(len(entry.converted_at) == 1 for entry in entries)
    assert turns == sorted(set(turns))  # strictly increasing: one row per loop turn at most
    stored = await _stored_ids(database_url)
    assert sorted(stored) == sorted(entry.id for entry in entries)
    assert not (tmp_path / "dead.jsonl").exists()


async def test_the_writer_encodes_in_steps_and_stays_idempotent(database_url: str) -> None:
    """Postgres: the COPY's rows are encoded one step at a time (a zero step: every row).
    SQLite: the insert goes in chunks, each an await on aiosqlite's thread. Either way one
    transaction per write: a retry stores nothing twice."""
    engine = create_engine(database_url)
    statements: list[int] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count_rows(_conn: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
        if sql.lstrip().upper().startswith("INSERT INTO REQUEST_LOGS"):
            statements.append(len(params) if many else 1)

    writer = RequestLogWriter(engine)
    rows = [_entry().as_row() for _ in range(ROWS)]
    pace = Pacer(0)
    await writer.write(rows, pace)
    await writer.write(rows, Pacer(0))  # a retry after an ambiguous failure
    dialect = engine.dialect.name
    await engine.dispose()
    if dialect == "postgresql":
        assert pace.yields >= ROWS
    else:
        assert len(statements) >= 2 * (ROWS // 50)  # both writes, in chunks
        assert max(statements) <= 50, statements
    assert sorted(await _stored_ids(database_url)) == sorted(row["id"] for row in rows)


async def test_a_pacer_yields_only_once_its_step_is_used_up() -> None:
    eager, patient = Pacer(0), Pacer(3600)
    async with TURNS.counting() as turns:
        start = turns.count
        for _ in range(10):
            await patient()
        assert turns.count == start  # an hour's step is never used up here
        for _ in range(10):
            await eager()
        assert turns.count >= start + 10
    assert (eager.yields, patient.yields) == (10, 0)


def test_settle_heap_keeps_what_exists_out_of_later_collections() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the cyclic collector could free it

    kept = Node()
    settle_heap()
    assert gc.get_freeze_count() > 0
    assert not any(obj is kept for obj in gc.get_objects())


def test_a_started_gateway_has_settled_its_heap(gateway: RunningGateway) -> None:
    # Objects made by start-up (the app, its runtime) are frozen, not walked by each collection.
    runtime = gateway.app_state.runtime
    assert gc.get_freeze_count() > 0
    assert not any(obj is runtime for obj in gc.get_objects())
