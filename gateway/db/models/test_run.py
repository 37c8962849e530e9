"""Test runs: one execution of (part of) a prompt's suite against one version and model.

Progress lives on the row (counts, cost, mean score) so readers poll one row. `owner` and
`heartbeat_at` say which process runs it and that it is alive: a `running` row whose heartbeat
is stale belongs to a dead process and is resumed (or failed with the reason) by another.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, JSONDocument, UTCDateTime


class TestRun(Base):
    __tablename__ = "test_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prompt_id: Mapped[str] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"))
    prompt_slug: Mapped[str] = mapped_column(String(100))
    # The version is fixed when the run is created, even when it was asked for by label.
    version: Mapped[int] = mapped_column(Integer)
    prompt_version_id: Mapped[str] = mapped_column(String(32))
    label: Mapped[str | None] = mapped_column(String(100), nullable=True)
    model: Mapped[str] = mapped_column(String(200))
    model_override: Mapped[str | None] = mapped_column(String(200), nullable=True)
    selection: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    concurrency: Mapped[int] = mapped_column(Integer)
    budget_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    schedule_id: Mapped[str | None] = mapped_column(
        ForeignKey("schedules.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[str] = mapped_column(String(16))
    total: Mapped[int] = mapped_column(Integer)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    passed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    errored: Mapped[int] = mapped_column(Integer, default=0)
    mean_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(20, 10), default=Decimal(0))
    estimate_usd: Mapped[Decimal] = mapped_column(Numeric(20, 10), default=Decimal(0))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    starts: Mapped[int] = mapped_column(Integer, default=0)
    """Times a process took the run up (1 normally; more after resumes)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_test_runs_prompt_created", "prompt_slug", "created_at"),
        Index("ix_test_runs_schedule_created", "schedule_id", "created_at"),
        Index("ix_test_runs_status_heartbeat", "status", "heartbeat_at"),
    )
