"""Missing ledger counters, rebuilt from the request log before they are trusted.

A counter goes missing after a Redis restart or eviction, at the start of a new window, or after
a gateway restart in the embedded mode. The rebuild first writes this gateway's buffered log
rows (settled costs may still be waiting there), sums the window's logged costs for the budget's
scope, and installs the counter with that spend plus the holds this gateway still has in flight.
Concurrent callers for one counter share one rebuild; another gateway that installs first wins.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from gateway.budgets.ledger import BudgetLedger, CounterRef, Hold, LedgerUnavailable
from gateway.budgets.metrics import BudgetMetrics
from gateway.budgets.money import from_ticks
from gateway.budgets.scopes import BudgetRecord
from gateway.budgets.spend import SpendQuery
from gateway.budgets.windows import Window

__all__ = ["CounterRebuilder"]

log = logging.getLogger("sluice.budgets")


class CounterRebuilder:
    def __init__(
        self,
        *,
        ledger: Callable[[], BudgetLedger],
        spend: SpendQuery,
        metrics: BudgetMetrics,
        flush_log: Callable[[], Awaitable[bool]],
        now_ms: Callable[[], int],
    ) -> None:
        self._ledger = ledger
        self._spend = spend
        self._metrics = metrics
        self._flush_log = flush_log
        self._now_ms = now_ms
        self._running: dict[str, asyncio.Task[None]] = {}
        self._live: dict[str, tuple[Sequence[CounterRef], Hold]] = {}

    # -- this gateway's holds in flight --------------------------------------------------

    def held(self, refs: Sequence[CounterRef], hold: Hold) -> None:
        self._live[hold.reservation_id] = (refs, hold)

    def settled(self, reservation_id: str) -> None:
        self._live.pop(reservation_id, None)

    def _holds_on(self, ref: CounterRef, now_ms: int) -> list[Hold]:
        expired = [rid for rid, (_, hold) in self._live.items() if hold.expires_at_ms <= now_ms]
        for rid in expired:  # a request that never settled (it cannot, but never leak)
            del self._live[rid]
        return [hold for refs, hold in self._live.values() if any(r.key == ref.key for r in refs)]

    # -- rebuilding ----------------------------------------------------------------------

    async def rebuild(self, budget: BudgetRecord, window: Window, ref: CounterRef) -> None:
        task = self._running.get(ref.key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._rebuild(budget, window, ref))
            self._running[ref.key] = task
            task.add_done_callback(lambda done: self._done(ref.key, done))
        await asyncio.shield(task)

    def _done(self, key: str, task: asyncio.Task[None]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter got it already

    async def _rebuild(self, budget: BudgetRecord, window: Window, ref: CounterRef) -> None:
        try:
            await self._flush_log()
            spent = await self._spend.spent_ticks(budget, window)
        except Exception as exc:
            raise LedgerUnavailable(f"the request log could not be read: {exc}") from exc
        now = self._now_ms()
        holds = self._holds_on(ref, now)
        if await self._ledger().install(ref, spent, now_ms=now, holds=holds):
            self._metrics.rebuilds.inc()
            log.info(
                "budget %s (%s): counter for %s rebuilt from the request log: $%s spent, "
                "%d holds in flight",
                budget.id,
                budget.label,
                window.key,
                f"{from_ticks(spent).normalize():f}",
                len(holds),
            )
