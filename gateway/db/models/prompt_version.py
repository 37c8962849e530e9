"""Prompt versions: immutable, numbered per prompt; rows are inserted and never updated."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, JSONDocument, UTCDateTime


class PromptVersion(Base):
    __tablename__ = "prompt_versions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prompt_id: Mapped[str] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    variables: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    variables_schema: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument, nullable=True)
    response_schema: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # SHA-256 of the version's content (not its note): pushing the same file twice is a no-op.
    content_hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("prompt_id", "version"),
        Index("ix_prompt_versions_prompt_hash", "prompt_id", "content_hash"),
    )
