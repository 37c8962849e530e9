"""A/B tests: weighted variants of one prompt's versions; at most one runs per prompt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, JSONDocument, UTCDateTime


class AbTest(Base):
    __tablename__ = "ab_tests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prompt_id: Mapped[str] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # draft -> running -> stopped; promoted tests are stopped with a winner.
    status: Mapped[str] = mapped_column(String(16))
    # [{"name", "version", "version_id", "weight"}]: fixed when the test is created.
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    min_samples: Mapped[int] = mapped_column(Integer)
    winner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        # The database, not a read-then-write check, keeps a second test from running.
        Index(
            "uq_ab_tests_running_prompt",
            "prompt_id",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )
