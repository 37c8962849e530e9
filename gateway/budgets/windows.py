"""Budget periods and their windows, at UTC boundaries.

A window is the stretch of time one counter covers: a UTC day for `daily`, a UTC calendar month
for `monthly`, everything for `total`. Its key names the counter in the ledger; its bounds select
the request-log rows a missing counter is rebuilt from. The moment that picks the window is the
request's own timestamp, the one its log row carries, so the ledger and the log always agree
on which window a cost belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

__all__ = ["COUNTER_GRACE", "Period", "Window", "window_for"]

# Counters outlive their window by this much, for settlements of requests started just before
# the boundary and for reading yesterday's figures; then Redis forgets them.
COUNTER_GRACE = timedelta(days=7)


class Period(StrEnum):
    DAILY = "daily"
    MONTHLY = "monthly"
    TOTAL = "total"


@dataclass(frozen=True, slots=True)
class Window:
    key: str
    """"2026-11-21", "2026-11" or "total"."""
    start: datetime | None
    end: datetime | None
    """Exclusive; None for `total`."""

    def contains(self, moment: datetime) -> bool:
        if self.start is None or self.end is None:
            return True
        return self.start <= moment < self.end

    @property
    def expire_at(self) -> int:
        """Unix seconds when the ledger may drop this window's counter; 0 for never."""
        return 0 if self.end is None else int((self.end + COUNTER_GRACE).timestamp())


_TOTAL = Window("total", None, None)


def window_for(period: Period, moment: datetime) -> Window:
    """The window of `period` holding `moment` (an aware datetime, any time zone)."""
    if period is Period.TOTAL:
        return _TOTAL
    moment = moment.astimezone(UTC)
    if period is Period.DAILY:
        start = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
        return Window(start.strftime("%Y-%m-%d"), start, start + timedelta(days=1))
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    end = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
    return Window(start.strftime("%Y-%m"), start, end)
