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

SQLite: the log table is unchanged. Both: `request_log_daily` and `evaluation_model_hourly`,
kept by triggers (statement triggers with transition tables on Postgres, row triggers on
SQLite) and filled here from the rows already there.
"""

# ruff: noqa: S608  (the SQL here is assembled from this file's constants, never from input)

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

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

_DAY = "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

_DAILY_SELECT = f"""
SELECT {_DAY}, coalesce(prompt_slug, ''), coalesce(prompt_version, 0),
       coalesce(model_requested, ''), is_test_run, count(*),
       count(*) FILTER (WHERE status_code = 200), count(*) FILTER (WHERE status_code >= 400),
       coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0),
       coalesce(sum(cost_usd), 0), count(cost_usd), coalesce(sum(latency_ms), 0)
FROM {{source}} GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
"""
_DAILY_COLUMNS = (
    "day, prompt_slug, prompt_version, model_requested, is_test_run, requests, succeeded, "
    "errors, prompt_tokens, completion_tokens, cost_usd, cost_count, latency_ms_sum"
)
_DAILY_KEY = "day, prompt_slug, prompt_version, model_requested, is_test_run"
_DAILY_SUMS = [
    "requests",
    "succeeded",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "cost_count",
    "latency_ms_sum",
]


def _add(target: str, sign: str, sums: list[str]) -> str:
    return ", ".join(f"{c} = {target}.{c} {sign} excluded.{c}" for c in sums)


_EVAL_SELECT = """
SELECT to_char(i.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24'),
       to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24'), i.model_requested,
       count(*), sum(e.score)
FROM {source} e JOIN request_log_ids i ON i.log_id = e.request_log_id
WHERE e.context <> 'manual' AND e.score IS NOT NULL AND i.model_requested IS NOT NULL
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
_EVAL_KEY = "log_hour, eval_hour, model_requested"

_SCORE_COLUMNS = (
    "day, prompt_slug, prompt_version, context, evaluator_key, evaluations, scores, "
    "score_sum, passed"
)
_SCORE_KEY = "day, prompt_slug, prompt_version, context, evaluator_key"
_SCORE_SUMS = ["evaluations", "scores", "score_sum", "passed"]
# The evaluations the prompt analytics read (gateway/analytics/prompts.py, `_scores`).
_SCORE_SELECT = """
SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), prompt_slug,
       coalesce(prompt_version, 0), context, evaluator_key, count(*), count(score),
       coalesce(sum(score), 0), count(*) FILTER (WHERE passed IS TRUE)
FROM {source}
WHERE prompt_slug IS NOT NULL AND context <> 'manual' AND skipped IS FALSE AND error IS NULL
GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
"""

# Sorted upserts: concurrent writers lock rollup rows in one order and cannot deadlock.
_PG_TRIGGERS = f"""
CREATE FUNCTION sluice_request_logs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO request_log_ids (request_id, log_id, created_at, model_requested)
        SELECT request_id, id, created_at, model_requested FROM new_rows;
    INSERT INTO request_log_daily AS d ({_DAILY_COLUMNS})
        {_DAILY_SELECT.format(source="new_rows")}
        ON CONFLICT ({_DAILY_KEY}) DO UPDATE SET {_add("d", "+", _DAILY_SUMS)};
    RETURN NULL;
END $$;

CREATE FUNCTION sluice_request_logs_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO request_log_daily AS d ({_DAILY_COLUMNS})
        {_DAILY_SELECT.format(source="old_rows")}
        ON CONFLICT ({_DAILY_KEY}) DO UPDATE SET {_add("d", "-", _DAILY_SUMS)};
    DELETE FROM request_log_daily WHERE requests <= 0;
    DELETE FROM request_log_ids WHERE log_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END $$;

CREATE FUNCTION sluice_evaluations_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO evaluation_model_hourly AS d
        (log_hour, eval_hour, model_requested, evaluations, score_sum)
        {_EVAL_SELECT.format(source="new_rows")}
        ON CONFLICT ({_EVAL_KEY}) DO UPDATE SET
            evaluations = d.evaluations + excluded.evaluations,
            score_sum = d.score_sum + excluded.score_sum;
    INSERT INTO evaluation_prompt_daily AS d ({_SCORE_COLUMNS})
        {_SCORE_SELECT.format(source="new_rows")}
        ON CONFLICT ({_SCORE_KEY}) DO UPDATE SET {_add("d", "+", _SCORE_SUMS)};
    RETURN NULL;
END $$;

CREATE FUNCTION sluice_evaluations_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO evaluation_prompt_daily AS d ({_SCORE_COLUMNS})
        {_SCORE_SELECT.format(source="old_rows")}
        ON CONFLICT ({_SCORE_KEY}) DO UPDATE SET {_add("d", "-", _SCORE_SUMS)};
    DELETE FROM evaluation_prompt_daily WHERE evaluations <= 0;
    RETURN NULL;
END $$;

CREATE TRIGGER sluice_request_logs_inserted AFTER INSERT ON request_logs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION sluice_request_logs_inserted();
CREATE TRIGGER sluice_request_logs_deleted AFTER DELETE ON request_logs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION sluice_request_logs_deleted();
CREATE TRIGGER sluice_evaluations_inserted AFTER INSERT ON evaluations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION sluice_evaluations_inserted();
CREATE TRIGGER sluice_evaluations_deleted AFTER DELETE ON evaluations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION sluice_evaluations_deleted();
"""

_SQLITE_ROW = (
    "substr({r}.created_at, 1, 10), coalesce({r}.prompt_slug, ''), "
    "coalesce({r}.prompt_version, 0), coalesce({r}.model_requested, ''), {r}.is_test_run, 1, "
    "{r}.status_code = 200, {r}.status_code >= 400, coalesce({r}.prompt_tokens, 0), "
    "coalesce({r}.completion_tokens, 0), coalesce({r}.cost_usd, 0), "
    "{r}.cost_usd IS NOT NULL, {r}.latency_ms"
)
_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER sluice_request_logs_inserted AFTER INSERT ON request_logs BEGIN
    INSERT INTO request_log_daily ({_DAILY_COLUMNS}) VALUES ({_SQLITE_ROW.format(r="NEW")})
    ON CONFLICT ({_DAILY_KEY}) DO UPDATE SET {_add("request_log_daily", "+", _DAILY_SUMS)};
END""",
    f"""CREATE TRIGGER sluice_request_logs_deleted AFTER DELETE ON request_logs BEGIN
    INSERT INTO request_log_daily ({_DAILY_COLUMNS}) VALUES ({_SQLITE_ROW.format(r="OLD")})
    ON CONFLICT ({_DAILY_KEY}) DO UPDATE SET {_add("request_log_daily", "-", _DAILY_SUMS)};
    DELETE FROM request_log_daily WHERE requests <= 0;
END""",
    f"""CREATE TRIGGER sluice_evaluations_inserted AFTER INSERT ON evaluations
WHEN NEW.context <> 'manual' AND NEW.score IS NOT NULL BEGIN
    INSERT INTO evaluation_model_hourly (log_hour, eval_hour, model_requested, evaluations,
        score_sum)
    SELECT substr(r.created_at, 1, 13), substr(NEW.created_at, 1, 13), r.model_requested, 1,
        NEW.score
    FROM request_logs r WHERE r.id = NEW.request_log_id AND r.model_requested IS NOT NULL
    ON CONFLICT ({_EVAL_KEY}) DO UPDATE SET
        evaluations = evaluation_model_hourly.evaluations + excluded.evaluations,
        score_sum = evaluation_model_hourly.score_sum + excluded.score_sum;
END""",
]

_SQLITE_SCORE_ROW = (
    "substr({r}.created_at, 1, 10), {r}.prompt_slug, coalesce({r}.prompt_version, 0), "
    "{r}.context, {r}.evaluator_key, 1, {r}.score IS NOT NULL, coalesce({r}.score, 0), "
    "{r}.passed IS 1"
)
_SQLITE_SCORED = (
    "{r}.prompt_slug IS NOT NULL AND {r}.context <> 'manual' AND {r}.skipped IS 0 "
    "AND {r}.error IS NULL"
)
_SQLITE_TRIGGERS += [
    f"""CREATE TRIGGER sluice_evaluations_scored AFTER INSERT ON evaluations
WHEN {_SQLITE_SCORED.format(r="NEW")} BEGIN
    INSERT INTO evaluation_prompt_daily ({_SCORE_COLUMNS})
    VALUES ({_SQLITE_SCORE_ROW.format(r="NEW")})
    ON CONFLICT ({_SCORE_KEY}) DO UPDATE SET
        {_add("evaluation_prompt_daily", "+", _SCORE_SUMS)};
END""",
    f"""CREATE TRIGGER sluice_evaluations_deleted AFTER DELETE ON evaluations
WHEN {_SQLITE_SCORED.format(r="OLD")} BEGIN
    INSERT INTO evaluation_prompt_daily ({_SCORE_COLUMNS})
    VALUES ({_SQLITE_SCORE_ROW.format(r="OLD")})
    ON CONFLICT ({_SCORE_KEY}) DO UPDATE SET
        {_add("evaluation_prompt_daily", "-", _SCORE_SUMS)};
    DELETE FROM evaluation_prompt_daily WHERE evaluations <= 0;
END""",
]

_SQLITE_FILL = [
    f"""INSERT INTO request_log_daily ({_DAILY_COLUMNS})
SELECT substr(created_at, 1, 10), coalesce(prompt_slug, ''), coalesce(prompt_version, 0),
    coalesce(model_requested, ''), is_test_run, count(*), sum(status_code = 200),
    sum(status_code >= 400), coalesce(sum(prompt_tokens), 0),
    coalesce(sum(completion_tokens), 0), coalesce(sum(cost_usd), 0), count(cost_usd),
    coalesce(sum(latency_ms), 0)
FROM request_logs GROUP BY 1, 2, 3, 4, 5""",
    """INSERT INTO evaluation_model_hourly (log_hour, eval_hour, model_requested, evaluations,
    score_sum)
SELECT substr(r.created_at, 1, 13), substr(e.created_at, 1, 13), r.model_requested, count(*),
    sum(e.score)
FROM evaluations e JOIN request_logs r ON r.id = e.request_log_id
WHERE e.context <> 'manual' AND e.score IS NOT NULL AND r.model_requested IS NOT NULL
GROUP BY 1, 2, 3""",
    f"""INSERT INTO evaluation_prompt_daily ({_SCORE_COLUMNS})
SELECT substr(created_at, 1, 10), prompt_slug, coalesce(prompt_version, 0), context,
    evaluator_key, count(*), count(score), coalesce(sum(score), 0), sum(passed IS 1)
FROM evaluations WHERE {_SQLITE_SCORED.format(r="evaluations")}
GROUP BY 1, 2, 3, 4, 5""",
]

_DROP_PG = """
DROP TRIGGER IF EXISTS sluice_evaluations_inserted ON evaluations;
DROP TRIGGER IF EXISTS sluice_evaluations_deleted ON evaluations;
DROP FUNCTION IF EXISTS sluice_evaluations_inserted(), sluice_evaluations_deleted();
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
        f"INSERT INTO request_log_daily ({_DAILY_COLUMNS}) "
        + _DAILY_SELECT.format(source="request_logs_unpartitioned")
    )
    op.execute(
        "INSERT INTO evaluation_model_hourly "
        "(log_hour, eval_hour, model_requested, evaluations, score_sum) "
        + _EVAL_SELECT.format(source="evaluations")
    )
    op.execute(
        f"INSERT INTO evaluation_prompt_daily ({_SCORE_COLUMNS}) "
        + _SCORE_SELECT.format(source="evaluations")
    )
    op.execute("DROP TABLE request_logs_unpartitioned")
    op.execute(
        "ALTER TABLE evaluations ADD CONSTRAINT fk_evaluations_request_log_id_request_log_ids "
        "FOREIGN KEY (request_log_id) REFERENCES request_log_ids (log_id) ON DELETE CASCADE"
    )
    op.execute(_PG_TRIGGERS)


def _downgrade_postgres() -> None:
    op.execute(_DROP_PG)
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
    for statement in _SQLITE_FILL + _SQLITE_TRIGGERS:
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
