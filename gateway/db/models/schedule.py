"""Schedules: run a prompt's suite on a cron expression (UTC) against a label or a version.

`next_run_at` is also the firing lock: a scheduler fires a schedule by moving it forward with
`UPDATE ... WHERE next_run_at = <the value it read>`, so of several workers exactly one wins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, JSONDocument, UTCDateTime


class Schedule(Base):
    __tablename__ = "schedules"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prompt_id: Mapped[str] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"))
    prompt_slug: Mapped[str] = mapped_column(String(100))
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    label: Mapped[str | None] = mapped_column(String(100), nullable=True)
    cron: Mapped[str] = mapped_column(String(100))
    model_override: Mapped[str | None] = mapped_column(String(200), nullable=True)
    selection: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    concurrency: Mapped[int] = mapped_column(Integer)
    budget_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    max_score_drop: Mapped[float] = mapped_column(Float)
    """Alert when the mean score falls by more than this share of the previous run's."""
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_schedules_enabled_next", "enabled", "next_run_at"),)
