"""Request log retention and partitions, at explicit dates on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import insert, select, text

from gateway.db.engine import create_engine
from gateway.db.migrate import downgrade, upgrade
from gateway.db.models import (
    Evaluation,
    EvaluationModelHourly,
    EvaluationPromptDaily,
    RequestLog,
    RequestLogDaily,
)
from gateway.ids import new_id
from gateway.requestlog.buffer import RequestLogWriter
from gateway.requestlog.entry import LogEntry
from gateway.requestlog.maintenance import LogMaintenance

NOW = datetime(2026, 6, 10, 12, tzinfo=UTC)
KEPT = [datetime(2026, 6, 3, 0, 0, tzinfo=UTC), datetime(2026, 6, 9, 18, tzinfo=UTC)]
OLD = [datetime(2026, 5, 20, 8, tzinfo=UTC), datetime(2026, 6, 2, 23, 59, 59, tzinfo=UTC)]


def _entry(at: datetime, request_id: str | None = None) -> dict[str, Any]:
    row_id = new_id()
    return LogEntry(
        id=row_id,
        request_id=request_id or row_id,
        created_at=at,
        endpoint="chat.completions",
        status_code=200,
        model_requested="m",
        latency_ms=10.0,
    ).as_row()


def _evaluation(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_id(),
        "request_log_id": row["id"],
        "request_id": row["request_id"],
        "context": "production",
        "prompt_slug": "qa",
        "prompt_version": 1,
        "evaluator_key": "exact_match",
        "evaluator_version": "1",
        "config": {},
        "weight": 1.0,
        "score": 1.0,
        "skipped": False,
        "details": {},
        # The next hour: for the oldest kept row, an evaluation made after the cutoff.
        "created_at": row["created_at"] + timedelta(hours=1),
    }


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _partitions(url: str) -> set[str]:
    with psycopg.connect(_plain(url)) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'request_logs'::regclass"
        ).fetchall()
    return {name for (name,) in rows}


async def test_retention_keeps_whole_days_and_takes_evaluations_and_rollup_along(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    postgres = engine.dialect.name == "postgresql"
    try:
        writer = RequestLogWriter(engine)
        rows = [_entry(at) for at in OLD + KEPT]
        await writer.write(rows)
        async with engine.begin() as connection:
            await connection.execute(insert(Evaluation), [_evaluation(r) for r in rows])
        if postgres:
            # Weeks ago, a run without retention made partitions for the days the log held.
            keep_all = LogMaintenance(engine, retention_days=0, clock=lambda: OLD[0])
            assert (await keep_all.run_once()).partitions_created >= 4
            assert {"request_logs_p20260520", "request_logs_p20260602"} <= _partitions(database_url)
        # One more old row, in the default partition on Postgres (no partition for its day).
        stray = _entry(datetime(2026, 4, 1, tzinfo=UTC))
        await writer.write([stray])

        maintenance = LogMaintenance(engine, retention_days=7, clock=lambda: NOW, batch=1)
        report = await maintenance.run_once()

        async with engine.connect() as connection:
            left = set(await connection.scalars(select(RequestLog.created_at)))
            evaluated = set(await connection.scalars(select(Evaluation.request_log_id)))
            days = set(await connection.scalars(select(RequestLogDaily.day)))
            scored = dict(
                (
                    await connection.execute(
                        select(EvaluationPromptDaily.day, EvaluationPromptDaily.evaluations)
                    )
                ).all()
            )
            hours = set(await connection.scalars(select(EvaluationModelHourly.log_hour)))
        assert left == set(KEPT)
        assert evaluated == {r["id"] for r in rows[len(OLD) :]}
        assert days == {"2026-06-03", "2026-06-09"}
        # 06-02 23:59's evaluation (made on 06-03) went with its request.
        assert scored == {"2026-06-03": 1, "2026-06-09": 1}
        assert hours == {"2026-06-03 00", "2026-06-09 18"}
        if postgres:
            assert report.partitions_dropped >= 2
            assert report.rows_deleted == 1  # the stray, from the default partition
            names = _partitions(database_url)
            days = sorted(n for n in names if n.startswith("request_logs_p2026"))
            assert days[0] == "request_logs_p20260603" and "request_logs_p20260609" in names
            assert "request_logs_p20260613" in names  # made ahead of NOW
        else:
            assert report.rows_deleted == 3
        # A request id whose row retention removed is free again: no rename.
        assert await writer.write([_entry(KEPT[1], request_id=rows[0]["request_id"])]) == {}
    finally:
        await engine.dispose()


async def test_no_retention_keeps_everything(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await RequestLogWriter(engine).write([_entry(at) for at in OLD + KEPT])
        report = await LogMaintenance(engine, retention_days=0, clock=lambda: NOW).run_once()
        assert report.rows_deleted == report.partitions_dropped == 0
        async with engine.connect() as connection:
            assert len(list(await connection.scalars(select(RequestLog.id)))) == 4
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_day_partition_takes_over_the_default_partitions_rows(
    postgres_database: str,
) -> None:
    engine = create_engine(postgres_database)
    day = datetime(2031, 1, 5, 9, tzinfo=UTC)  # far from any other test's partitions
    try:
        await RequestLogWriter(engine).write([_entry(day)])
        async with engine.connect() as connection:
            where = await connection.scalar(
                text("SELECT tableoid::regclass::text FROM request_logs WHERE created_at = :at"),
                {"at": day},
            )
        assert where == "request_logs_default"
        await LogMaintenance(engine, retention_days=0, clock=lambda: day).run_once()
        async with engine.connect() as connection:
            where = await connection.scalar(
                text("SELECT tableoid::regclass::text FROM request_logs WHERE created_at = :at"),
                {"at": day},
            )
        assert where == "request_logs_p20310105"
        # Made ahead: the next days' rows go straight to their own partitions.
        await RequestLogWriter(engine).write([_entry(day + timedelta(days=2))])
        assert {"request_logs_p20310107", "request_logs_p20310108"} <= _partitions(
            postgres_database
        )
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_the_migration_partitions_a_populated_log(postgres_database: str) -> None:
    engine = create_engine(postgres_database)
    url = _plain(postgres_database)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE request_logs, evaluations CASCADE")
    try:
        await downgrade(engine, "0006")
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute(
                "SELECT relkind FROM pg_class WHERE relname = 'request_logs'"
            ).fetchone() == ("r",)
        with psycopg.connect(url, autocommit=True) as conn:
            # The columns the log had at 0006: later migrations add more.
            at_0006 = {
                name
                for (name,) in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'request_logs'"
                )
            }
        rows = [{k: v for k, v in _entry(at).items() if k in at_0006} for at in OLD + KEPT]
        async with engine.begin() as connection:
            await connection.execute(insert(RequestLog), rows)
            await connection.execute(insert(Evaluation), [_evaluation(rows[0])])
        await upgrade(engine)
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute(
                "SELECT relkind FROM pg_class WHERE relname = 'request_logs'"
            ).fetchone() == ("p",)
            assert conn.execute("SELECT count(*) FROM request_logs").fetchone() == (4,)
            assert conn.execute("SELECT count(*) FROM request_logs_default").fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM request_log_ids").fetchone() == (4,)
            assert conn.execute("SELECT sum(requests) FROM request_log_daily").fetchone() == (4,)
            assert conn.execute(
                "SELECT sum(evaluations) FROM evaluation_model_hourly"
            ).fetchone() == (1,)
            # Uniqueness survives the move: the same request id again is refused.
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute(
                    "INSERT INTO request_logs (id, request_id, created_at, endpoint, status_code,"
                    " usage_estimated, latency_ms, streamed, client_disconnected, tags,"
                    " is_test_run) VALUES ('x', %s, now(), 'chat.completions', 200, false, 1,"
                    " false, false, '{}', false)",
                    [rows[1]["request_id"]],
                )
    finally:
        await engine.dispose()
