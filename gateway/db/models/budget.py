"""Budgets: a spending limit on a scope (global, key, prompt, user, tag) per period."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Float, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, UTCDateTime


class Budget(Base):
    __tablename__ = "budgets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    # "" for the global scope, so the unique constraint holds (NULLs never collide in SQL).
    scope_value: Mapped[str] = mapped_column(String(300))
    period: Mapped[str] = mapped_column(String(16))
    limit_usd: Mapped[Decimal] = mapped_column(Numeric(20, 10))
    soft_limit_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("scope", "scope_value", "period"),)
