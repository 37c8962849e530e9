"""The budget ledger in one process, for the embedded mode (no SLUICE_REDIS_URL).

The same semantics as the Lua scripts, step for step (see `ledger.py`): each method runs to the
end without awaiting, so on one event loop it is as atomic as a script in Redis. Counters start
missing, so after a restart each is rebuilt from the database before it is trusted, exactly as
after a Redis restart. Time-based forgetting mirrors Redis key expiry, on the injected clock
(the budget service's), just as the scripts hand Redis lifetimes relative to that clock.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field

from gateway.budgets.ledger import (
    CounterRef,
    CounterState,
    Hold,
    ReserveOutcome,
    SettleOutcome,
)
from gateway.clock import Clock, system_clock

__all__ = ["LocalLedger"]


@dataclass(slots=True)
class _Counter:
    spent: int
    reserved: int
    rebuilt_at: int
    forget_at: int
    alerted: bool = False


@dataclass(slots=True)
class _Holds:
    amounts: dict[str, int] = field(default_factory=dict)
    expiries: list[tuple[int, str]] = field(default_factory=list)
    """A heap of (expires at ms, reservation id); entries of settled holds linger harmlessly."""
    forget_at: int = 0


class LocalLedger:
    def __init__(self, clock: Clock = system_clock) -> None:
        self._clock = clock
        self._counters: dict[str, _Counter] = {}
        self._holds: dict[str, _Holds] = {}
        self._settled: dict[str, int] = {}
        self._settled_expiry: list[tuple[int, str]] = []

    def _now_s(self) -> int:
        return int(self._clock().timestamp())

    def _counter(self, key: str) -> _Counter | None:
        counter = self._counters.get(key)
        if counter is not None and counter.forget_at and counter.forget_at <= self._now_s():
            del self._counters[key]
            return None
        return counter

    def _holds_of(self, key: str) -> _Holds | None:
        holds = self._holds.get(key)
        if holds is not None and holds.forget_at and holds.forget_at <= self._now_s():
            del self._holds[key]
            return None
        return holds

    def _release_expired(self, key: str, counter: _Counter, now_ms: int) -> None:
        holds = self._holds_of(key)
        if holds is None:
            return
        while holds.expiries and holds.expiries[0][0] <= now_ms:
            _, reservation_id = heapq.heappop(holds.expiries)
            amount = holds.amounts.pop(reservation_id, None)
            if amount is not None:
                counter.reserved -= amount
        if not holds.amounts:
            del self._holds[key]

    async def reserve(
        self,
        reservation_id: str,
        amount: int,
        refs: list[CounterRef],
        *,
        now_ms: int,
        expires_at_ms: int,
    ) -> ReserveOutcome:
        counters = [self._counter(ref.key) for ref in refs]
        missing = tuple(i for i, counter in enumerate(counters) if counter is None)
        if missing:
            return ReserveOutcome(missing=missing)
        left = []
        for index, (ref, counter) in enumerate(zip(refs, counters, strict=True)):
            assert counter is not None
            self._release_expired(ref.key, counter, now_ms)
            room = ref.limit - counter.spent - counter.reserved
            if amount > room:
                remaining = [0] * len(refs)
                remaining[index] = room
                return ReserveOutcome(exceeded=index, remaining=tuple(remaining))
            left.append(room - amount)
        for ref, counter in zip(refs, counters, strict=True):
            assert counter is not None
            counter.reserved += amount
            holds = self._holds.setdefault(ref.key, _Holds())
            holds.amounts[reservation_id] = amount
            heapq.heappush(holds.expiries, (expires_at_ms, reservation_id))
            holds.forget_at = ref.expire_at
        return ReserveOutcome(remaining=tuple(left))

    def _mark_settled(self, reservation_id: str, ttl_s: int) -> bool:
        now = self._now_s()
        while self._settled_expiry and self._settled_expiry[0][0] <= now:
            _, old = heapq.heappop(self._settled_expiry)
            if self._settled.get(old, now + 1) <= now:
                del self._settled[old]
        if reservation_id in self._settled:
            return False
        self._settled[reservation_id] = now + ttl_s
        heapq.heappush(self._settled_expiry, (now + ttl_s, reservation_id))
        return True

    async def settle(
        self,
        reservation_id: str,
        cost: int,
        refs: list[CounterRef],
        *,
        failed_at_ms: int = 0,
        marker_ttl_s: int,
    ) -> SettleOutcome:
        return self._settle(reservation_id, cost, refs, failed_at_ms, marker_ttl_s)

    def begin_settle(
        self,
        reservation_id: str,
        cost: int,
        refs: list[CounterRef],
        *,
        marker_ttl_s: int,
    ) -> Awaitable[SettleOutcome]:
        done: asyncio.Future[SettleOutcome] = asyncio.get_running_loop().create_future()
        done.set_result(self._settle(reservation_id, cost, refs, 0, marker_ttl_s))
        return done

    def _settle(
        self,
        reservation_id: str,
        cost: int,
        refs: list[CounterRef],
        failed_at_ms: int,
        marker_ttl_s: int,
    ) -> SettleOutcome:
        if not self._mark_settled(reservation_id, marker_ttl_s):
            return SettleOutcome(duplicate=True)
        states: list[CounterState | None] = []
        alerts = []
        for index, ref in enumerate(refs):
            counter = self._counter(ref.key)
            if counter is None:
                states.append(None)
                continue
            holds = self._holds_of(ref.key)
            if holds is not None:
                held = holds.amounts.pop(reservation_id, None)
                if held is not None:
                    counter.reserved -= held
                if not holds.amounts:
                    del self._holds[ref.key]
            if failed_at_ms == 0 or counter.rebuilt_at < failed_at_ms:
                counter.spent += max(cost, 0)  # money only moves forward: never a credit
            if ref.soft is not None and counter.spent >= ref.soft and not counter.alerted:
                counter.alerted = True
                alerts.append(index)
            states.append(CounterState(counter.spent, counter.reserved))
        return SettleOutcome(False, tuple(states), tuple(alerts))

    async def install(
        self, ref: CounterRef, spent: int, *, now_ms: int, holds: Sequence[Hold] = ()
    ) -> bool:
        if self._counter(ref.key) is not None:
            return False
        kept = self._holds_of(ref.key)
        if holds:
            kept = self._holds.setdefault(ref.key, _Holds(forget_at=ref.expire_at))
            for hold in holds:
                if hold.reservation_id not in kept.amounts:
                    kept.amounts[hold.reservation_id] = hold.amount
                    heapq.heappush(kept.expiries, (hold.expires_at_ms, hold.reservation_id))
        reserved = sum(kept.amounts.values()) if kept is not None else 0
        self._counters[ref.key] = _Counter(max(spent, 0), reserved, now_ms, ref.expire_at)
        return True

    async def status(
        self, refs: list[CounterRef], *, now_ms: int
    ) -> tuple[CounterState | None, ...]:
        states: list[CounterState | None] = []
        for ref in refs:
            counter = self._counter(ref.key)
            if counter is None:
                states.append(None)
                continue
            self._release_expired(ref.key, counter, now_ms)
            states.append(CounterState(counter.spent, counter.reserved))
        return tuple(states)

    async def drop(self, refs: list[CounterRef]) -> None:
        for ref in refs:
            self._counters.pop(ref.key, None)
            self._holds.pop(ref.key, None)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
