"""Soft-limit alerts: at most one per budget and window, enforced by the unique constraint."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, UTCDateTime


class BudgetAlert(Base):
    __tablename__ = "budget_alerts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    budget_id: Mapped[str] = mapped_column(String(32), ForeignKey("budgets.id", ondelete="CASCADE"))
    # The window's key ("2026-11-21", "2026-11", "total") and its start, for display.
    window_key: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    spent_usd: Mapped[Decimal] = mapped_column(Numeric(20, 10))
    soft_limit_usd: Mapped[Decimal] = mapped_column(Numeric(20, 10))
    limit_usd: Mapped[Decimal] = mapped_column(Numeric(20, 10))

    __table_args__ = (UniqueConstraint("budget_id", "window_key"),)
