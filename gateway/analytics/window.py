"""The time window every analytics query is bounded by, and the day bucket of a timestamp.

Days are UTC. The bucket is the one dialect difference in these queries: Postgres truncates
the timestamp in UTC, SQLite (which stores naive UTC text) takes its date part.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func
from sqlalchemy.orm import InstrumentedAttribute

from gateway.db.base import utcnow
from gateway.errors import InvalidRequest

__all__ = ["MAX_DAYS", "Window", "day_bucket"]

MAX_DAYS = 366


@dataclass(frozen=True, slots=True)
class Window:
    since: datetime
    until: datetime

    @classmethod
    def of(cls, since: datetime | None, until: datetime | None, days: int | None = None) -> Window:
        end = until or utcnow()
        if days is not None and not 1 <= days <= MAX_DAYS:
            raise InvalidRequest(f"days must be between 1 and {MAX_DAYS}.", param="days")
        start = since or end - timedelta(days=days or 7)
        if start >= end:
            raise InvalidRequest("since must be before until.", param="since")
        if end - start > timedelta(days=MAX_DAYS):
            raise InvalidRequest(f"A window spans at most {MAX_DAYS} days.", param="since")
        return cls(start, end)


def day_bucket(column: InstrumentedAttribute[datetime], dialect: str) -> ColumnElement[str]:
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)
