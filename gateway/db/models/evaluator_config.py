"""Evaluator configs: one evaluator with its settings, attached to a prompt version or a test case.

Exactly one owner is set. A version's configs monitor its production traffic; a test case's
configs score that case in test runs (their foreign key arrived with the test cases, 0005).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, JSONDocument, UTCDateTime


class EvaluatorConfig(Base):
    __tablename__ = "evaluator_configs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prompt_version_id: Mapped[str | None] = mapped_column(
        ForeignKey("prompt_versions.id", ondelete="CASCADE"), index=True
    )
    test_case_id: Mapped[str | None] = mapped_column(
        ForeignKey("test_cases.id", ondelete="CASCADE"), index=True
    )
    evaluator_key: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    threshold: Mapped[float | None] = mapped_column(Float)
    run_mode: Mapped[str] = mapped_column(String(16))
    sampling_rate: Mapped[float] = mapped_column(Float, default=1.0)
    # Ids of configs of the same owner that must pass first.
    depends_on: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("(prompt_version_id IS NULL) <> (test_case_id IS NULL)", name="one_owner"),
    )
