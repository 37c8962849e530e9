"""request log partitioned by day on Postgres; rollups kept by triggers

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 02:30:00.000000

Postgres: `request_logs` becomes a table partitioned by range of `created_at`, one partition
per UTC day (`request_logs_pYYYYMMDD`) and a default partition as the last line, so an insert
never fails for want of a partition. The existing rows are copied over. A unique index there
must contain the partition key, so the primary key becomes (id, created_at) and the
uniqueness of `id` and of `request_id` moves to `request_log_ids`, filled by a statement
trigger in the same statement as the insert (a reused id fails the batch as the unique index
did); evaluations now reference `request_log_ids.log_id`. `sluice_request_log_partition(day)`
creates a day's partition, moving its rows out of the default partition first; the gateway
calls it for the coming days (gateway/requestlog/maintenance.py).

SQLite: the log table is unchanged. Both: `request_log_daily`, `evaluation_prompt_daily` and
`evaluation_model_hourly`, kept by triggers (statement triggers with transition tables on
Postgres, row triggers on SQLite; their SQL is in migrations/rollup_sql_0007.py) and filled
here from the rows already there.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.rollup_sql_0007 import (
    DAILY_COLUMNS,
    DAILY_SELECT,
    DROP_PG,
    EVAL_SELECT,
    PG_TRIGGERS,
    SCORE_COLUMNS,
    SCORE_SELECT,
    SQLITE_FILL,
    SQLITE_TRIGGERS,
)

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = [
    "ix_request_logs_request_id",
    "ix_request_logs_created_at",
    "ix_request_logs_key_id",
    "ix_request_logs_prompt_created",
    "ix_request_logs_user_created",
    "ix_request_logs_session",
    "ix_request_logs_created_model",
    "ix_request_logs_prompt_window",
]

# As in gateway/db/models/request_log.py, with request_id no longer unique (request_log_ids is).
_CREATE_INDEXES = """
CREATE INDEX ix_request_logs_request_id ON request_logs (request_id);
CREATE INDEX ix_request_logs_created_at ON request_logs (created_at);
CREATE INDEX ix_request_logs_key_id ON request_logs (key_id);
CREATE INDEX ix_request_logs_prompt_created ON request_logs (prompt_slug, prompt_version, created_at);
CREATE INDEX ix_request_logs_user_created ON request_logs ("user", created_at);
CREATE INDEX ix_request_logs_session ON request_logs (session);
CREATE INDEX ix_request_logs_created_model ON request_logs (created_at, model_requested)
    INCLUDE (status_code, latency_ms, cost_usd, id);
CREATE INDEX ix_request_logs_prompt_window ON request_logs (prompt_slug, created_at)
    INCLUDE (prompt_version, is_test_run, status_code, prompt_tokens, completion_tokens,
             cost_usd, latency_ms);
"""

# Idempotent and safe to call from several processes: the advisory lock serialises creators,
# and rows the default partition took for that day are moved before the partition attaches
# (ATTACH refuses while the default holds rows of the new range).
_PARTITION_FUNCTION = """
CREATE FUNCTION sluice_request_log_partition(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    name text := 'request_logs_p' || to_char(day, 'YYYYMMDD');
    low timestamptz := day::timestamp AT TIME ZONE 'UTC';
    high timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('sluice_request_log_partition'));
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE request_logs INCLUDING DEFAULTS)', name);
    EXECUTE format(
        'INSERT INTO %I SELECT * FROM request_logs_default '
        'WHERE created_at >= %L AND created_at < %L', name, low, high);
    EXECUTE format(
        'DELETE FROM request_logs_default WHERE created_at >= %L AND created_at < %L',
        low, high);
    EXECUTE format(
        'ALTER TABLE request_logs ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
        name, low, high);
    RETURN true;
END $$;
"""


def _create_rollups() -> None:
    op.create_table(
        "request_log_daily",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("prompt_slug", sa.String(length=100), nullable=False),
        sa.Column("prompt_version", sa.Integer(), nullable=False),
        sa.Column("model_requested", sa.String(length=200), nullable=False),
        sa.Column("is_test_run", sa.Boolean(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("succeeded", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Numeric(precision=30, scale=10), nullable=False),
        sa.Column("cost_count", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms_sum", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day",
            "prompt_slug",
            "prompt_version",
            "model_requested",
            "is_test_run",
            name=op.f("pk_request_log_daily"),
        ),
    )
    op.create_index("ix_request_log_daily_prompt_day", "request_log_daily", ["prompt_slug", "day"])
    op.create_table(
        "evaluation_model_hourly",
        sa.Column("log_hour", sa.String(length=13), nullable=False),
        sa.Column("eval_hour", sa.String(length=13), nullable=False),
        sa.Column("model_requested", sa.String(length=200), nullable=False),
        sa.Column("evaluations", sa.BigInteger(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "log_hour", "eval_hour", "model_requested", name=op.f("pk_evaluation_model_hourly")
        ),
    )


def _create_score_rollup() -> None:
    op.create_table(
        "evaluation_prompt_daily",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("prompt_slug", sa.String(length=100), nullable=False),
        sa.Column("prompt_version", sa.Integer(), nullable=False),
        sa.Column("context", sa.String(length=16), nullable=False),
        sa.Column("evaluator_key", sa.String(length=64), nullable=False),
        sa.Column("evaluations", sa.BigInteger(), nullable=False),
        sa.Column("scores", sa.BigInteger(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        sa.Column("passed", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day",
            "prompt_slug",
            "prompt_version",
            "context",
            "evaluator_key",
            name=op.f("pk_evaluation_prompt_daily"),
        ),
    )
    op.create_index(
        "ix_evaluation_prompt_daily_prompt_day", "evaluation_prompt_daily", ["prompt_slug", "day"]
    )


def _upgrade_postgres() -> None:
    op.execute("ALTER TABLE evaluations DROP CONSTRAINT fk_evaluations_request_log_id_request_logs")
    op.execute("ALTER TABLE request_logs RENAME TO request_logs_unpartitioned")
    op.execute("ALTER TABLE request_logs_unpartitioned DROP CONSTRAINT pk_request_logs")
    op.execute("DROP INDEX " + ", ".join(_INDEXES))
    op.execute(
        "CREATE TABLE request_logs (LIKE request_logs_unpartitioned INCLUDING DEFAULTS) "
        "PARTITION BY RANGE (created_at)"
    )
    op.execute(
        "ALTER TABLE request_logs ADD CONSTRAINT pk_request_logs PRIMARY KEY (id, created_at)"
    )
    op.execute(_CREATE_INDEXES)
    op.execute("CREATE TABLE request_logs_default PARTITION OF request_logs DEFAULT")
    op.create_table(
        "request_log_ids",
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("log_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_requested", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_request_log_ids")),
        sa.UniqueConstraint("log_id", name=op.f("uq_request_log_ids_log_id")),
    )
    op.create_index("ix_request_log_ids_created_at", "request_log_ids", ["created_at"])
    op.execute(_PARTITION_FUNCTION)
    # A partition per day the rows cover, and the next days; then the rows move over.
    op.execute(
        "SELECT sluice_request_log_partition(d::date) FROM generate_series("
        "(SELECT coalesce(min(created_at), now()) AT TIME ZONE 'UTC' "
        "FROM request_logs_unpartitioned)::date, "
        "(now() AT TIME ZONE 'UTC')::date + 3, interval '1 day') AS d"
    )
    _create_rollups()
    _create_score_rollup()
    op.execute("INSERT INTO request_logs SELECT * FROM request_logs_unpartitioned")
    op.execute(
        "INSERT INTO request_log_ids (request_id, log_id, created_at, model_requested) "
        "SELECT request_id, id, created_at, model_requested FROM request_logs_unpartitioned"
    )
    op.execute(
        f"INSERT INTO request_log_daily ({DAILY_COLUMNS}) "
        + DAILY_SELECT.format(source="request_logs_unpartitioned")
    )
    op.execute(
        "INSERT INTO evaluation_model_hourly "
        "(log_hour, eval_hour, model_requested, evaluations, score_sum) "
        + EVAL_SELECT.format(source="evaluations")
    )
    op.execute(
        f"INSERT INTO evaluation_prompt_daily ({SCORE_COLUMNS}) "
        + SCORE_SELECT.format(source="evaluations")
    )
    op.execute("DROP TABLE request_logs_unpartitioned")
    op.execute(
        "ALTER TABLE evaluations ADD CONSTRAINT fk_evaluations_request_log_id_request_log_ids "
        "FOREIGN KEY (request_log_id) REFERENCES request_log_ids (log_id) ON DELETE CASCADE"
    )
    op.execute(PG_TRIGGERS)


def _downgrade_postgres() -> None:
    op.execute(DROP_PG)
    op.execute("DROP TRIGGER sluice_request_logs_inserted ON request_logs")
    op.execute("DROP TRIGGER sluice_request_logs_deleted ON request_logs")
    op.execute("DROP FUNCTION sluice_request_logs_inserted(), sluice_request_logs_deleted()")
    op.execute(
        "ALTER TABLE evaluations DROP CONSTRAINT fk_evaluations_request_log_id_request_log_ids"
    )
    op.execute("ALTER TABLE request_logs RENAME TO request_logs_partitioned")
    op.execute("ALTER TABLE request_logs_partitioned DROP CONSTRAINT pk_request_logs")
    op.execute("DROP INDEX " + ", ".join(_INDEXES))
    op.execute("CREATE TABLE request_logs (LIKE request_logs_partitioned INCLUDING DEFAULTS)")
    op.execute("INSERT INTO request_logs SELECT * FROM request_logs_partitioned")
    op.execute("DROP TABLE request_logs_partitioned CASCADE")
    op.execute("DROP FUNCTION sluice_request_log_partition(date)")
    op.execute("ALTER TABLE request_logs ADD CONSTRAINT pk_request_logs PRIMARY KEY (id)")
    op.execute(
        _CREATE_INDEXES.replace(
            "INDEX ix_request_logs_request_id", "UNIQUE INDEX ix_request_logs_request_id"
        )
    )
    op.execute(
        "ALTER TABLE evaluations ADD CONSTRAINT fk_evaluations_request_log_id_request_logs "
        "FOREIGN KEY (request_log_id) REFERENCES request_logs (id) ON DELETE CASCADE"
    )
    op.drop_table("request_log_ids")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgres()
        return
    _create_rollups()
    _create_score_rollup()
    for statement in SQLITE_FILL + SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _downgrade_postgres()
    else:
        for name in (
            "sluice_evaluations_deleted",
            "sluice_evaluations_scored",
            "sluice_evaluations_inserted",
            "sluice_request_logs_deleted",
            "sluice_request_logs_inserted",
        ):
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_evaluation_prompt_daily_prompt_day", table_name="evaluation_prompt_daily")
    op.drop_table("evaluation_prompt_daily")
    op.drop_table("evaluation_model_hourly")
    op.drop_index("ix_request_log_daily_prompt_day", table_name="request_log_daily")
    op.drop_table("request_log_daily")
