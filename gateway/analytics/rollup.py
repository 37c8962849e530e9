"""A window split for the rollups: whole UTC days (or hours) from a rollup, the rest raw.

A window rarely starts or ends at midnight, so its figures are the rollup's sums over the whole
days inside it plus the raw log's over the partial days at its edges (at most two, each under
a day). Sums and counts add up exactly; means are sums over counts; percentiles cannot be
added and stay on the raw rows (gateway/analytics/prompts.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_
from sqlalchemy.orm import InstrumentedAttribute

from gateway.analytics.window import Window

__all__ = ["DAY", "HOUR", "NO_MODEL", "NO_PROMPT", "NO_VERSION", "Split", "or_none", "split"]

# The rollup's stand-ins for NULL in its key columns (see gateway/db/models/request_log_rollup).
NO_PROMPT = ""
NO_VERSION = 0
NO_MODEL = ""


@dataclass(frozen=True, slots=True)
class Split:
    window: Window
    unit: timedelta
    first_day: str | None
    """The first whole day (YYYY-MM-DD) or hour (YYYY-MM-DD HH) in the rollup; None when the
    window holds none."""
    last_day: str | None
    edges: tuple[tuple[datetime, datetime], ...]
    """The parts of the window read raw: the whole window when it holds no whole day."""

    def raw(self, column: InstrumentedAttribute[datetime]) -> ColumnElement[bool]:
        """The raw log's share of the window, on `column`."""
        if not self.edges:
            return false()
        return or_(*(and_(column >= low, column < high) for low, high in self.edges))

    def whole(self, column: InstrumentedAttribute[datetime]) -> ColumnElement[bool]:
        """The rollup's share of the window (its whole days), on a timestamp `column`."""
        low, high = self.whole_range
        return and_(column >= low, column < high)

    def days(self, column: InstrumentedAttribute[str]) -> ColumnElement[bool]:
        """The rollup's share of the window, on a YYYY-MM-DD (or YYYY-MM-DD HH) `column`."""
        if self.first_day is None or self.last_day is None:
            return false()
        return and_(column >= self.first_day, column <= self.last_day)

    @property
    def whole_range(self) -> tuple[datetime, datetime]:
        first, last = _bounds(self.window, self.unit)
        return (first, last) if first < last else (first, first)


DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def _floor(moment: datetime, unit: timedelta) -> datetime:
    moment = moment.astimezone(UTC)
    start = datetime.combine(moment.date(), time(), UTC)
    return start + unit * ((moment - start) // unit)


def _bounds(window: Window, unit: timedelta) -> tuple[datetime, datetime]:
    """The first and the last boundary of `unit` (a day or an hour) inside the window."""
    start = _floor(window.since, unit)
    if start < window.since:
        start += unit
    return start, _floor(window.until, unit)


def _label(moment: datetime, unit: timedelta) -> str:
    return moment.strftime("%Y-%m-%d" if unit == DAY else "%Y-%m-%d %H")


def split(window: Window, unit: timedelta = DAY) -> Split:
    """The window's whole days (or hours, for the hourly rollup) and its raw edges."""
    first, last = _bounds(window, unit)
    if first >= last:
        return Split(window, unit, None, None, ((window.since, window.until),))
    edges = tuple(
        (low, high) for low, high in ((window.since, first), (last, window.until)) if low < high
    )
    return Split(window, unit, _label(first, unit), _label(last - unit, unit), edges)


def or_none(value: Any, missing: Any) -> Any:
    """A rollup key column back to NULL when it holds the stand-in."""
    return None if value == missing else value
