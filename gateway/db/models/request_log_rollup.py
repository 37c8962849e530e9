"""What the request log keeps beside its rows: the daily rollup, and (Postgres) its id registry.

Both rollups are maintained by database triggers (migration 0007) in the transaction that
writes the rows, so they are exact whichever process writes: a batch retried after an
ambiguous failure adds nothing (ON CONFLICT DO NOTHING inserts no row, fires no count).
Key columns are NOT NULL so the upsert has one key: no prompt is '' and version 0, no model
is '' (gateway/analytics/rollup.py maps them back to NULL).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, UTCDateTime


class RequestLogDaily(Base):
    """Per UTC day x prompt version x model x production/test: the sums analytics read."""

    __tablename__ = "request_log_daily"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    """YYYY-MM-DD in UTC, the format of gateway.analytics.window.day_bucket."""
    prompt_slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    prompt_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_requested: Mapped[str] = mapped_column(String(200), primary_key=True)
    is_test_run: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger)
    succeeded: Mapped[int] = mapped_column(BigInteger)
    """status 200, the model analytics' success."""
    errors: Mapped[int] = mapped_column(BigInteger)
    """status >= 400, the prompt analytics' errors."""
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(30, 10))
    cost_count: Mapped[int] = mapped_column(BigInteger)
    """Rows with a cost, the divisor of the mean cost."""
    latency_ms_sum: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_request_log_daily_prompt_day", "prompt_slug", "day"),)


class EvaluationModelHourly(Base):
    """Scores per model by the hour of the request and the hour of the evaluation.

    Model analytics count an evaluation when both its own time and its request's fall in the
    window, so both times are keys. Hours, not days: the raw remainder is then the requests
    and evaluations of the window's partial hours (evaluations are found per request by
    index), not of two partial days. Manual scores and unscored evaluations are left out, as
    the model analytics leave them out.
    """

    __tablename__ = "evaluation_model_hourly"

    log_hour: Mapped[str] = mapped_column(String(13), primary_key=True)
    """YYYY-MM-DD HH in UTC."""
    eval_hour: Mapped[str] = mapped_column(String(13), primary_key=True)
    model_requested: Mapped[str] = mapped_column(String(200), primary_key=True)
    evaluations: Mapped[int] = mapped_column(BigInteger)
    score_sum: Mapped[float] = mapped_column(Float)


class EvaluationPromptDaily(Base):
    """Per UTC day of the evaluation x prompt version x context x evaluator: the prompt
    analytics' scores (not manual, not skipped, without error)."""

    __tablename__ = "evaluation_prompt_daily"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    prompt_slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    prompt_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    context: Mapped[str] = mapped_column(String(16), primary_key=True)
    evaluator_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    evaluations: Mapped[int] = mapped_column(BigInteger)
    scores: Mapped[int] = mapped_column(BigInteger)
    """Evaluations with a score, the divisor of the mean score."""
    score_sum: Mapped[float] = mapped_column(Float)
    passed: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_evaluation_prompt_daily_prompt_day", "prompt_slug", "day"),)


class RequestLogId(Base):
    """Postgres only: the request ids and row ids of the partitioned log, each unique.

    A unique index on a partitioned table must contain the partition key (created_at), so
    neither `request_id` nor `id` can be unique on `request_logs` itself there. A trigger
    inserts every new log row's ids here in the same statement, so a reused id fails the
    batch exactly as the unique index does on SQLite, and evaluations reference `log_id`.
    Retention deletes these with their rows. SQLite has no such table (its unique indexes do).
    """

    __tablename__ = "request_log_ids"

    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    log_id: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    model_requested: Mapped[str | None] = mapped_column(String(200))
