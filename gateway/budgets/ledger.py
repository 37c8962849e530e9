"""The budget ledger: per-window spend counters with atomic, all-or-nothing reservations.

Two implementations share these semantics exactly: `RedisLedger` (Lua scripts, shared by every
replica) and `LocalLedger` (one process, the embedded mode). A counter holds `spent` and
`reserved` in ticks. It must exist before it is trusted: `reserve` reports missing counters
instead of assuming zero, and the caller installs them rebuilt from the request log.

    reserve  every counter has room for `amount` -> hold it on all of them; else hold nothing
    settle   release the hold and add the real cost; once per reservation id (idempotent);
             `begin_settle` puts it in order at once and lets the caller read the outcome later
    install  create a missing counter with the spend rebuilt from the log and the holds the
             installing gateway still has in flight (no-op if the counter exists)
    status   the counters as they are, after releasing holds that have expired

A hold expires at `expires_at_ms` (its gateway crashed or lost the store): the next reserve or
status on that counter releases it. A retried settlement (`failed_at_ms` > 0, its first attempt
failed and its log row was written meanwhile) adds its cost only to counters not rebuilt since
that failure, because a rebuilt counter already holds the logged cost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "BudgetLedger",
    "CounterRef",
    "CounterState",
    "Hold",
    "LedgerUnavailable",
    "ReserveOutcome",
    "SettleOutcome",
]


class LedgerUnavailable(Exception):
    """The store could not be reached or did not answer in time."""


@dataclass(frozen=True, slots=True)
class CounterRef:
    """One budget's counter for one window."""

    key: str
    """`<budget id>:<window key>`."""
    limit: int
    soft: int | None
    """Spend (ticks) at which the soft-limit alert fires, or None."""
    expire_at: int
    """Unix seconds after which the counter may be forgotten; 0 for never."""


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation still in flight, as the gateway that made it remembers it."""

    reservation_id: str
    amount: int
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class CounterState:
    spent: int
    reserved: int


@dataclass(frozen=True, slots=True)
class ReserveOutcome:
    missing: tuple[int, ...] = ()
    """Indexes of counters that must be installed before anything can be reserved."""
    exceeded: int | None = None
    """Index of the first counter without room (nothing was reserved)."""
    remaining: tuple[int, ...] = ()
    """Ticks left per counter: after the hold, or at the refusal for `exceeded`."""


@dataclass(frozen=True, slots=True)
class SettleOutcome:
    duplicate: bool
    """This reservation was settled before: nothing changed."""
    counters: tuple[CounterState | None, ...] = ()
    """Each counter after settling; None where the counter is missing."""
    alerts: tuple[int, ...] = ()
    """Indexes of counters whose soft limit was reached for the first time in the window."""


class BudgetLedger(Protocol):
    async def reserve(
        self,
        reservation_id: str,
        amount: int,
        refs: list[CounterRef],
        *,
        now_ms: int,
        expires_at_ms: int,
    ) -> ReserveOutcome: ...

    async def settle(
        self,
        reservation_id: str,
        cost: int,
        refs: list[CounterRef],
        *,
        failed_at_ms: int = 0,
        marker_ttl_s: int,
    ) -> SettleOutcome: ...

    def begin_settle(
        self,
        reservation_id: str,
        cost: int,
        refs: list[CounterRef],
        *,
        marker_ttl_s: int,
    ) -> Awaitable[SettleOutcome]:
        """`settle`, ordered now: it takes effect before any later call of this process, and
        its outcome is awaited afterwards (behind the response)."""
        ...

    async def install(
        self, ref: CounterRef, spent: int, *, now_ms: int, holds: Sequence[Hold] = ()
    ) -> bool: ...

    async def status(
        self, refs: list[CounterRef], *, now_ms: int
    ) -> tuple[CounterState | None, ...]: ...

    async def drop(self, refs: list[CounterRef]) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
