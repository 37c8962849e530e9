"""Model prices set through the admin API; they override SLUICE_CONFIG and the shipped table."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, UTCDateTime


class PricingOverride(Base):
    __tablename__ = "pricing_overrides"

    # The model name as the upstream knows it, or "*" for the price of unlisted models.
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    # USD per million tokens.
    input: Mapped[Decimal] = mapped_column(Numeric(20, 10))
    cached_input: Mapped[Decimal | None] = mapped_column(Numeric(20, 10), nullable=True)
    output: Mapped[Decimal] = mapped_column(Numeric(20, 10))
    max_output_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
