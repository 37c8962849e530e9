"""The request log writer: batches, idempotence, a full buffer, a database that goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from gateway.db.base import utcnow
from gateway.db.engine import create_engine
from gateway.db.migrate import downgrade, migration_state, upgrade
from gateway.db.models import RequestLog
from gateway.ids import new_id
from gateway.requestlog.buffer import RequestLogBuffer, RequestLogWriter
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


async def test_a_full_buffer_drops_and_counts(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    dropped: list[int] = []
    buffer = RequestLogBuffer(
        RequestLogWriter(engine),
        max_rows=5,
        batch_size=100,
        flush_interval=60,
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
