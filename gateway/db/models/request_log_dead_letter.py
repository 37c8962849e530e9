"""Request-log rows the database refused, kept with the reason (requestlog/deadletter.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, UTCDateTime


class RequestLogDeadLetter(Base):
    """A request-log row the database refused, kept with the reason instead of blocking the log.

    The row is JSON text with every non-ASCII character escaped, so even the values the
    `request_logs` columns could not hold (a NUL, an out-of-range number) are stored as sent.
    """

    __tablename__ = "request_log_dead_letters"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    row_id: Mapped[str] = mapped_column(Text)
    """The refused row's own id, as in `request_logs.id`."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    error: Mapped[str] = mapped_column(Text)
    row: Mapped[str] = mapped_column(Text)
