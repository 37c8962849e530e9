"""The request log: one row per request through the gateway, the record of what happened."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, JSONDocument, UTCDateTime


class RequestLog(Base):
    __tablename__ = "request_logs"

    # Time-ordered id made by the gateway: the primary key, the paging cursor and the
    # de-duplication key when a batch is written twice.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Unique: a caller's reused id is made unique by the writer (gateway/requestlog/buffer.py).
    request_id: Mapped[str] = mapped_column(String(128), index=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    endpoint: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str | None] = mapped_column(String(32), index=True)
    model_requested: Mapped[str | None] = mapped_column(String(200))
    model_served: Mapped[str | None] = mapped_column(String(200))
    upstream: Mapped[str | None] = mapped_column(String(100))
    # The upstream's id for its answer: GET /v1/responses/{id} finds the upstream by it.
    upstream_response_id: Mapped[str | None] = mapped_column(String(200), index=True)
    status_code: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(100))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    total_tokens: Mapped[int | None] = mapped_column(Integer)
    cached_tokens: Mapped[int | None] = mapped_column(Integer)
    usage_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(20, 10))
    latency_ms: Mapped[float] = mapped_column(Float)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    streamed: Mapped[bool] = mapped_column(Boolean, default=False)
    client_disconnected: Mapped[bool] = mapped_column(Boolean, default=False)
    user: Mapped[str | None] = mapped_column(String(200))
    session: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[dict[str, str]] = mapped_column(JSONDocument, default=dict)
    is_test_run: Mapped[bool] = mapped_column(Boolean, default=False)
    # Prompt registry references: the version, not its text, plus the variables.
    prompt_slug: Mapped[str | None] = mapped_column(String(100))
    prompt_version: Mapped[int | None] = mapped_column(Integer)
    prompt_version_id: Mapped[str | None] = mapped_column(String(32))
    ab_test_id: Mapped[str | None] = mapped_column(String(32))
    ab_variant: Mapped[str | None] = mapped_column(String(100))
    variables: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    request_body: Mapped[Any | None] = mapped_column(JSONDocument)
    response_body: Mapped[Any | None] = mapped_column(JSONDocument)

    __table_args__ = (
        Index("ix_request_logs_prompt_created", "prompt_slug", "prompt_version", "created_at"),
        Index("ix_request_logs_user_created", "user", "created_at"),
        Index("ix_request_logs_session", "session"),
        # Analytics (gateway/analytics): index-only scans on Postgres for a window's figures.
        Index(
            "ix_request_logs_created_model",
            "created_at",
            "model_requested",
            postgresql_include=["status_code", "latency_ms", "cost_usd", "id"],
        ),
        Index(
            "ix_request_logs_prompt_window",
            "prompt_slug",
            "created_at",
            postgresql_include=[
                "prompt_version",
                "is_test_run",
                "status_code",
                "prompt_tokens",
                "completion_tokens",
                "cost_usd",
                "latency_ms",
            ],
        ),
    )
