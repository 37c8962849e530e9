"""The one clock: every service that decides by time takes a `Clock` and never reads the wall.

Production passes `system_clock`; tests pass a clock they move. Stores that forget on their own
clock (Redis key expiry) are handed lifetimes relative to this clock's now, never absolute
instants, so a service whose clock differs from the store's still keeps what it wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "system_clock", "unix_ms"]

Clock = Callable[[], datetime]
"""Returns the current moment as an aware datetime."""


def system_clock() -> datetime:
    return datetime.now(UTC)


def unix_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
