"""Test cases: one input of a prompt's regression suite, with what a good answer looks like.

A case belongs to a prompt, not a version, so the same suite runs against every version. Its
evaluators are `evaluator_configs` rows owned by the case (`test_case_id`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, JSONDocument, UTCDateTime


class TestCase(Base):
    __tablename__ = "test_cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prompt_id: Mapped[str] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    variables: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    # Extra messages sent after the version's rendered ones (a user turn, a conversation).
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument, default=list)
    expected_output: Mapped[str | None] = mapped_column(Text, nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("prompt_id", "name"),)
