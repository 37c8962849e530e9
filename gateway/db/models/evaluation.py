"""Evaluations: one score of one logged response, by an evaluator config or by a person.

(request_log_id, evaluator_config_id) is unique, so a job delivered twice writes one row;
manual scores have no config and may be many. The prompt, version and A/B variant are copied
from the request log so that per-version quality needs no join.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, JSONDocument, UTCDateTime


class Evaluation(Base):
    __tablename__ = "evaluations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_log_id: Mapped[str] = mapped_column(ForeignKey("request_logs.id", ondelete="CASCADE"))
    request_id: Mapped[str] = mapped_column(String(128), index=True)
    evaluator_config_id: Mapped[str | None] = mapped_column(
        ForeignKey("evaluator_configs.id", ondelete="SET NULL")
    )
    context: Mapped[str] = mapped_column(String(16))
    """production, test_run or manual."""
    test_run_id: Mapped[str | None] = mapped_column(String(32), index=True)
    prompt_slug: Mapped[str | None] = mapped_column(String(100))
    prompt_version: Mapped[int | None] = mapped_column(Integer)
    prompt_version_id: Mapped[str | None] = mapped_column(String(32))
    ab_test_id: Mapped[str | None] = mapped_column(String(32))
    ab_variant: Mapped[str | None] = mapped_column(String(100))
    evaluator_key: Mapped[str] = mapped_column(String(64))
    evaluator_version: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    """The config as it was when this evaluation ran."""
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    threshold: Mapped[float | None] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)
    passed: Mapped[bool | None] = mapped_column(Boolean)
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(20, 10))
    """What the evaluation itself cost (a judge call), not the response's cost."""
    author: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("request_log_id", "evaluator_config_id"),
        Index("ix_evaluations_prompt_created", "prompt_slug", "prompt_version", "created_at"),
        Index("ix_evaluations_key_created", "evaluator_key", "created_at"),
        Index("ix_evaluations_config", "evaluator_config_id"),
        # Model analytics (gateway/analytics/models.py): a window's scores without the heap.
        Index(
            "ix_evaluations_created_scores",
            "created_at",
            postgresql_include=["request_log_id", "score", "context"],
        ),
    )
