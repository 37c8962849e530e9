"""The request log writer: batches, idempotence, a full buffer, a database that goes away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from gateway.db.base import utcnow
from gateway.db.engine import create_engine
from gateway.db.migrate import downgrade, migration_state, upgrade
from gateway.db.models import RequestLog, RequestLogDeadLetter
from gateway.ids import new_id
from gateway.metrics import GatewayMetrics
from gateway.requestlog.buffer import RequestLogBuffer, RequestLogWriter
from gateway.requestlog.deadletter import DeadLetters
from gateway.requestlog.entry import LogEntry
from tests.conftest import GatewayFactory
from tests.integration.throwaway_postgres import ThrowawayPostgres, postgres_binaries


def _entry(**fields: object) -> LogEntry:
    rid = new_id()
    return LogEntry(
        id=rid,
        request_id=rid,
        created_at=utcnow(),
        endpoint="chat.completions",
        status_code=200,
        **fields,
    )  # type: ignore[arg-type]


async def _count(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(RequestLog)) or 0)
    finally:
        await engine.dispose()


async def test_writing_a_batch_twice_stores_it_once(database_url: str) -> None:
    engine = create_engine(database_url)
    writer = RequestLogWriter(engine)
    rows = [_entry(tags={"team": "a"}, request_body={"x": [1, 2]}).as_row() for _ in range(10)]
    await writer.write(rows)
    await writer.write(rows)  # a retry after an ambiguous failure
    await engine.dispose()
    assert await _count(database_url) == 10


async def test_a_full_buffer_drops_and_counts(sqlite_url: str, tmp_path: Path) -> None:
    engine = create_engine(sqlite_url)
    dropped: list[int] = []
    buffer = RequestLogBuffer(
        RequestLogWriter(engine),
        max_rows=5,
        batch_size=100,
        flush_interval=60,
        dead_letters=DeadLetters(engine, tmp_path / "dead.jsonl"),
        on_dropped=dropped.append,
    )
    for _ in range(8):
        buffer.add(_entry())
    assert len(buffer) == 5
    assert buffer.dropped == 3
    assert sum(dropped) == 3
    await buffer.close()
    await engine.dispose()
    assert await _count(sqlite_url) == 5


async def _rows(url: str, model: type, *columns: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            query = select(*(getattr(model, c) for c in columns)).order_by(model.id)
            return [tuple(row) for row in await connection.execute(query)]
    finally:
        await engine.dispose()


async def test_a_refused_row_is_dead_lettered_and_the_rest_written(
    database_url: str, tmp_path: Path
) -> None:
    """A value the boundary does not fix (an integer no column holds) fails its batch in the
    database; the batch is bisected, the one row dead-lettered and counted, the rest written."""
    engine = create_engine(database_url)
    metrics = GatewayMetrics()
    buffer = RequestLogBuffer(
        RequestLogWriter(engine),
        max_rows=100,
        batch_size=100,
        flush_interval=60,
        dead_letters=DeadLetters(
            engine, tmp_path / "dead.jsonl", on_dead_lettered=metrics.log_dead_letters.inc
        ),
        on_flushed=metrics.log_rows_written.inc,
    )
    good = [_entry() for _ in range(9)]
    bad = _entry(prompt_tokens=2**70)
    for entry in [*good[:4], bad, *good[4:]]:
        buffer.add(entry)
    assert await buffer.flush()
    await buffer.close()
    await engine.dispose()
    assert len(buffer) == 0
    written = await _rows(database_url, RequestLog, "id")
    assert [row_id for (row_id,) in written] == sorted(e.id for e in good)
    [(row_id, error, row)] = await _rows(
        database_url, RequestLogDeadLetter, "row_id", "error", "row"
    )
    assert row_id == bad.id
    assert error  # the database's own words
    assert json.loads(str(row))["prompt_tokens"] == 2**70
    rendered = metrics.render().decode()
    assert "sluice_request_log_dead_letters_total 1.0" in rendered
    assert "sluice_log_rows_written_total 9.0" in rendered
    assert not (tmp_path / "dead.jsonl").exists()


async def test_rows_unwritten_at_shutdown_are_dead_lettered_to_the_file(tmp_path: Path) -> None:
    # Nothing listens on port 1: the database is unreachable for the whole life of the buffer.
    engine = create_engine("postgresql+psycopg://sluice@127.0.0.1:1/sluice")
    dead: list[int] = []
    file = tmp_path / "dead.jsonl"
    buffer = RequestLogBuffer(
        RequestLogWriter(engine),
        max_rows=100,
        batch_size=100,
        flush_interval=60,
        dead_letters=DeadLetters(engine, file, on_dead_lettered=dead.append),
    )
    entries = [_entry(user="u\x00") for _ in range(3)]
    for entry in entries:
        buffer.add(entry)
    assert not await buffer.flush()
    assert buffer.waiting_for() > 0
    await buffer.close(timeout=0.5)
    await engine.dispose()
    records = [json.loads(line) for line in file.read_text().splitlines()]
    assert [r["row_id"] for r in records] == [e.id for e in entries]
    assert all("shutdown" in r["error"] for r in records)
    assert json.loads(records[0]["row"])["request_id"] == entries[0].request_id
    assert sum(dead) == 3
    assert len(buffer) == 0


async def test_dead_letters_fall_back_to_the_file_when_their_table_cannot_take_them(
    tmp_path: Path,
) -> None:
    # A database without the table (never migrated): the insert fails, the file takes the row.
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'bare.db'}")
    file = tmp_path / "dead.jsonl"
    dead: list[int] = []
    row = _entry(user="nul\x00").as_row()
    await DeadLetters(engine, file, on_dead_lettered=dead.append).store([(row, "refused")])
    await engine.dispose()
    [record] = [json.loads(line) for line in file.read_text().splitlines()]
    assert (record["row_id"], record["error"]) == (row["id"], "refused")
    assert json.loads(record["row"])["id"] == row["id"]
    assert dead == [1]


async def test_a_reused_request_id_is_made_unique_and_retries_stay_idempotent(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    writer = RequestLogWriter(engine)
    first, second, third = (_entry() for _ in range(3))
    second.request_id = third.request_id = first.request_id
    assert await writer.write([first.as_row()]) == {}
    # Reused across batches and within one; the writer says which ids it gave instead.
    assert await writer.write([second.as_row(), third.as_row()]) == {
        second.id: f"{first.request_id[:95]}~{second.id}",
        third.id: f"{first.request_id[:95]}~{third.id}",
    }
    await writer.write([first.as_row(), second.as_row(), third.as_row()])  # a retry
    await engine.dispose()
    rows = await _rows(database_url, RequestLog, "id", "request_id")
    assert (
        dict(rows)
        == {  # type: ignore[arg-type]
            first.id: first.request_id,
            second.id: f"{first.request_id[:95]}~{second.id}",
            third.id: f"{first.request_id[:95]}~{third.id}",
        }
    )


async def test_the_unique_request_id_migration_keeps_existing_duplicates(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        await downgrade(engine, "0005")
        insert = text(
            "INSERT INTO request_logs (id, request_id, created_at, endpoint, status_code, "
            "usage_estimated, latency_ms, streamed, client_disconnected, tags, is_test_run) "
            "VALUES (:id, :rid, CURRENT_TIMESTAMP, 'chat.completions', 200, false, 1.0, "
            "false, false, '{}', false)"
        )
        async with engine.begin() as connection:
            for row_id in ("a" * 32, "b" * 32, "c" * 32):
                await connection.execute(insert, {"id": row_id, "rid": "r" * 128})
        await upgrade(engine)
    finally:
        await engine.dispose()
    assert await _rows(database_url, RequestLog, "id", "request_id") == [
        ("a" * 32, "r" * 128),
        ("b" * 32, "r" * 95 + "~" + "b" * 32),
        ("c" * 32, "r" * 95 + "~" + "c" * 32),
    ]


async def test_migrations_go_up_and_down(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert (await migration_state(engine)).up_to_date
        await downgrade(engine, "base")
        assert (await migration_state(engine)).current is None
        await upgrade(engine)
        state = await migration_state(engine)
        assert state.current == state.head
    finally:
        await engine.dispose()


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    if postgres_binaries() is None:
        pytest.skip("PostgreSQL binaries are not installed")
    cluster = ThrowawayPostgres()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.mark.postgres
def test_database_outage_during_a_burst_loses_and_duplicates_nothing(
    throwaway_postgres: ThrowawayPostgres, start_gateway: GatewayFactory
) -> None:
    async def migrate() -> None:
        engine = create_engine(throwaway_postgres.url)
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(migrate())
    gateway = start_gateway(throwaway_postgres.url)
    client = gateway.openai()
    sent: list[str] = []

    def burst(count: int) -> None:
        for _ in range(count):
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "burst"}]
            )
            assert raw.http_response.status_code == 200
            sent.append(raw.headers["x-sluice-request-id"])

    burst(20)
    throwaway_postgres.stop()
    burst(40)  # the database is gone: responses keep coming, rows wait in memory
    metrics = gateway.http.get("/metrics").text
    assert "sluice_log_buffer_rows 0.0" not in metrics
    throwaway_postgres.start()
    burst(20)
    rows = gateway.wait_for_rows(80, timeout=30)
    ids = [row["request_id"] for row in rows]
    assert len(ids) == len(set(ids)) == 80
    assert set(ids) == set(sent)
