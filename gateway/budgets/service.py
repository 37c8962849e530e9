"""The budget stage of the request path: price, estimate, reserve, settle; and budget status.

    reserve   the budgets that apply to the call; the worst case (exact prompt tokens at the
              input price + output cap at the output price); one atomic hold on all of them,
              after rebuilding any counter the ledger is missing from the request log
    settle    the real cost from the upstream's usage; release the hold, add the cost
              (a failed call settles with no usage: the hold is released, nothing is added).
              The settlement is sent before the response and its outcome read behind it:
              sent on the ledger's one connection, it runs before anything sent later.

With the store down, budgets fail closed (503) unless SLUICE_BUDGET_FAIL_OPEN is set, in which
case the request goes through unreserved, counted and logged. Settlements that cannot reach the
store are retried in the background; the gateway recovers by itself when the store returns.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from gateway.budgets.alerts import AlertSink
from gateway.budgets.estimate import check_output_limit, estimate_request
from gateway.budgets.ledger import (
    BudgetLedger,
    CounterRef,
    CounterState,
    Hold,
    LedgerUnavailable,
    ReserveOutcome,
    SettleOutcome,
)
from gateway.budgets.metrics import BudgetMetrics
from gateway.budgets.money import from_ticks
from gateway.budgets.pricing_service import PricingService
from gateway.budgets.rebuild import CounterRebuilder
from gateway.budgets.registry import BudgetRegistry
from gateway.budgets.reservations import Held, counter_ref, exceeded_message
from gateway.budgets.retries import PendingSettlement, SettleRetries
from gateway.budgets.scopes import BudgetRecord
from gateway.budgets.spend import SpendQuery
from gateway.budgets.windows import Period, Window, window_for
from gateway.clock import Clock, system_clock
from gateway.errors import BudgetExceeded, BudgetStoreUnavailable, InvalidRequest
from gateway.ids import new_id
from gateway.proxy.context import CallContext
from gateway.proxy.stages import Reservation, Settlement, Usage
from gateway.settings import BudgetSettings
from gateway.upstream.routing import Route

__all__ = ["BudgetService", "BudgetStatus"]

log = logging.getLogger("sluice.budgets")

# A counter can vanish again while it is rebuilt (eviction); past this, call the store down.
MAX_REBUILD_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    budget: BudgetRecord
    window: Window
    spent_usd: Decimal
    reserved_usd: Decimal
    remaining_usd: Decimal


class BudgetService:
    def __init__(
        self,
        *,
        registry: BudgetRegistry,
        pricing: PricingService,
        ledger: BudgetLedger,
        spend: SpendQuery,
        alerts: AlertSink,
        metrics: BudgetMetrics,
        settings: BudgetSettings,
        flush_log: Callable[[], Awaitable[bool]],
        clock: Clock = system_clock,
    ) -> None:
        self.registry = registry
        self.pricing = pricing
        self.ledger = ledger
        self.alerts = alerts
        self.metrics = metrics
        self.settings = settings
        self.clock = clock
        """Now, for hold expiry and the admin API's current window (tests inject one)."""
        self._ttl_ms = int(settings.reservation_ttl * 1000)
        self._marker_ttl_s = int(settings.reservation_ttl) + 60
        self._windows: dict[Period, Window] = {}
        self._refs: dict[str, tuple[BudgetRecord, Window, CounterRef]] = {}
        self._id_prefix = new_id()[12:28]
        self._id_counter = itertools.count()
        self.rebuilder = CounterRebuilder(
            ledger=lambda: self.ledger,
            spend=spend,
            metrics=metrics,
            flush_log=flush_log,
            now_ms=self._now_ms,
        )
        # The outcome of nearly every request, resolved once, not by a labels() lookup per call.
        self._reserved = metrics.checks.labels("reserved")
        self._store_down = False
        self._settling: set[asyncio.Task[None]] = set()
        self.retries = SettleRetries(self._retry, on_depth=metrics.pending_settlements.set)

    def _now_ms(self) -> int:
        return int(self.clock().timestamp() * 1000)

    def _reservation_id(self) -> str:
        # Unique across processes by the random prefix; no syscall per request (new_id has one).
        return f"{self._id_prefix}{next(self._id_counter):x}"

    def _ref(self, budget: BudgetRecord, window: Window) -> CounterRef:
        """The budget's counter for `window`, reused while neither changes (one per request
        and budget otherwise)."""
        cached = self._refs.get(budget.id)
        if cached is not None and cached[0] is budget and cached[1] is window:
            return cached[2]
        ref = counter_ref(budget, window)
        if len(self._refs) > 100_000:
            self._refs.clear()
        self._refs[budget.id] = (budget, window, ref)
        return ref

    def _window(self, period: Period, moment: datetime) -> Window:
        window = self._windows.get(period)
        if window is None or not window.contains(moment):
            window = self._windows[period] = window_for(period, moment)
        return window

    # -- the proxy's budget stage ----------------------------------------------------------

    async def reserve(
        self, call: CallContext, route: Route, body: dict[str, Any], endpoint: str
    ) -> Reservation | None:
        budgets = self.registry.matching(call)
        if not budgets:
            return None  # unbudgeted: forwarded as sent, priced at settlement
        price = self.pricing.price_for(route.model)
        check_output_limit(body, route.model, price, endpoint)
        if price is None:
            raise InvalidRequest(
                f"The model '{route.model[:100]}' has no price, so budget {budgets[0].label} "
                "cannot be enforced. Set its price with PUT /admin/pricing or in SLUICE_CONFIG "
                f'[pricing."{route.model[:100]}"], or set SLUICE_UNPRICED_MODELS=fallback with '
                'a "*" price.',
                param="model",
            )
        estimate = estimate_request(
            endpoint, route.model, body, price, self.settings.default_max_tokens
        )
        windows = tuple(self._window(b.period, call.created_at) for b in budgets)
        held = Held(
            self._reservation_id(),
            price,
            tuple(budgets),
            windows,
            [self._ref(b, w) for b, w in zip(budgets, windows, strict=True)],
        )
        try:
            outcome = await self._reserve(held, estimate.cost_ticks)
        except LedgerUnavailable as exc:
            return self._unavailable(call, held, exc)
        if outcome.exceeded is not None:
            self.metrics.checks.labels("exceeded").inc()
            index = outcome.exceeded
            raise BudgetExceeded(
                exceeded_message(
                    budgets[index], windows[index], outcome.remaining[index], estimate.cost_ticks
                )
            )
        self._reserved.inc()
        return Reservation(
            request_id=call.request_id,
            amount_usd=from_ticks(estimate.cost_ticks),
            budget_ids=[b.id for b in budgets],
            remaining_usd=from_ticks(max(min(outcome.remaining), 0)),
            state=Held(
                held.reservation_id,
                price,
                held.budgets,
                windows,
                held.refs,
                amount=estimate.cost_ticks,
                remaining=outcome.remaining,
            ),
        )

    async def _reserve(self, held: Held, amount: int) -> ReserveOutcome:
        for _ in range(MAX_REBUILD_ROUNDS):
            now = self._now_ms()
            expires_at = now + self._ttl_ms
            outcome = await self.ledger.reserve(
                held.reservation_id, amount, held.refs, now_ms=now, expires_at_ms=expires_at
            )
            self._store_up()
            if not outcome.missing:
                if outcome.exceeded is None:
                    hold = Hold(held.reservation_id, amount, expires_at)
                    self.rebuilder.held(held.refs, hold)
                return outcome
            await asyncio.gather(
                *(
                    self.rebuilder.rebuild(held.budgets[i], held.windows[i], held.refs[i])
                    for i in outcome.missing
                )
            )
        raise LedgerUnavailable("budget counters vanished while they were being rebuilt")

    def _unavailable(self, call: CallContext, held: Held, exc: LedgerUnavailable) -> Reservation:
        self.metrics.store_errors.labels("reserve").inc()
        self._store_lost(exc)
        if not self.settings.fail_open:
            self.metrics.checks.labels("unavailable").inc()
            raise BudgetStoreUnavailable(
                "The budget store is unavailable and budgets fail closed, so the request was "
                "not forwarded. Retry shortly."
            ) from exc
        self.metrics.checks.labels("fail_open").inc()
        self.metrics.fail_open.inc()
        log.warning(
            "budget store unavailable: request %s served without a reservation on %s "
            "(SLUICE_BUDGET_FAIL_OPEN)",
            call.request_id,
            ", ".join(b.id for b in held.budgets),
        )
        return Reservation(
            request_id=call.request_id,
            amount_usd=Decimal(0),
            budget_ids=[b.id for b in held.budgets],
            remaining_usd=None,
            state=replace(held, fail_open=True),
        )

    async def settle(
        self, reservation: Reservation | None, route: Route, usage: Usage | None
    ) -> Settlement:
        held = reservation.state if reservation is not None else None
        if not isinstance(held, Held):
            price = self.pricing.price_for(route.model)
            if usage is None or price is None:
                return Settlement(None, None)
            return Settlement(from_ticks(price.cost_ticks(usage)), None)
        cost = 0 if usage is None else held.price.cost_ticks(usage)
        cost_usd = None if usage is None else from_ticks(cost)
        self.rebuilder.settled(held.reservation_id)
        # Put the settlement in order now and read its outcome behind the response: one store
        # round trip fewer on the request path. The log row is written once this returns.
        failed_at = self._now_ms()
        pending = self.ledger.begin_settle(
            held.reservation_id, cost, held.refs, marker_ttl_s=self._marker_ttl_s
        )
        if isinstance(pending, asyncio.Future) and pending.done() and not pending.exception():
            self._settled(held, pending.result())  # the in-process ledger: already done
        else:
            task = asyncio.get_running_loop().create_task(
                self._finish_settle(pending, held, cost, failed_at)
            )
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)
        return Settlement(cost_usd, held.remaining_after(cost))

    async def _finish_settle(
        self, pending: Awaitable[SettleOutcome], held: Held, cost: int, failed_at: int
    ) -> None:
        try:
            outcome = await pending
        except LedgerUnavailable as exc:
            self.metrics.store_errors.labels("settle").inc()
            self._store_lost(exc)
            self.retries.add(PendingSettlement(held.reservation_id, cost, failed_at, held))
            return
        self._store_up()
        self._settled(held, outcome)

    async def _retry(self, item: PendingSettlement) -> None:
        held: Held = item.state
        outcome = await self.ledger.settle(
            item.reservation_id,
            item.cost,
            held.refs,
            failed_at_ms=item.failed_at_ms,
            marker_ttl_s=self._marker_ttl_s,
        )
        self._store_up()
        self._settled(held, outcome)

    def _settled(self, held: Held, outcome: SettleOutcome) -> None:
        for index in outcome.alerts:
            state = outcome.counters[index]
            if state is not None:
                self.alerts.fire(held.budgets[index], held.windows[index], state.spent)

    # -- store health ------------------------------------------------------------------------

    def _store_lost(self, exc: Exception) -> None:
        if not self._store_down:
            self._store_down = True
            mode = "open" if self.settings.fail_open else "closed"
            log.error("budget store unavailable (%s); budgets fail %s until it returns", exc, mode)

    def _store_up(self) -> None:
        if self._store_down:
            self._store_down = False
            log.warning("budget store reachable again; budgets enforced")

    # -- the admin API -----------------------------------------------------------------------

    async def status(self, budgets: Sequence[BudgetRecord]) -> list[BudgetStatus]:
        """Spent, reserved and remaining in each budget's current window."""
        if not budgets:
            return []
        now = self.clock()
        windows = [window_for(b.period, now) for b in budgets]
        refs = [counter_ref(b, w) for b, w in zip(budgets, windows, strict=True)]
        try:
            states = await self._states(budgets, windows, refs)
        except LedgerUnavailable as exc:
            self.metrics.store_errors.labels("status").inc()
            raise BudgetStoreUnavailable(
                "The budget store is unavailable: spend cannot be read right now."
            ) from exc
        return [
            BudgetStatus(
                budget,
                window,
                from_ticks(state.spent),
                from_ticks(state.reserved),
                from_ticks(max(budget.limit_ticks - state.spent - state.reserved, 0)),
            )
            for budget, window, state in zip(budgets, windows, states, strict=True)
        ]

    async def _states(
        self, budgets: Sequence[BudgetRecord], windows: list[Window], refs: list[CounterRef]
    ) -> list[CounterState]:
        for _ in range(MAX_REBUILD_ROUNDS):
            states = await self.ledger.status(refs, now_ms=self._now_ms())
            missing = [i for i, state in enumerate(states) if state is None]
            if not missing:
                return [state for state in states if state is not None]
            await asyncio.gather(
                *(self.rebuilder.rebuild(budgets[i], windows[i], refs[i]) for i in missing)
            )
        raise LedgerUnavailable("budget counters vanished while they were being rebuilt")

    async def forget(self, budget: BudgetRecord) -> None:
        """Drop a deleted budget's current counter (older windows expire on their own)."""
        try:
            await self.ledger.drop([counter_ref(budget, window_for(budget.period, self.clock()))])
        except LedgerUnavailable:
            log.warning("could not drop the counter of deleted budget %s", budget.id)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.retries.start()

    async def drain(self) -> None:
        """Wait for the outcomes of settlements sent so far, and the alerts they fired."""
        while self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)
        await self.alerts.drain()

    async def close(self) -> None:
        await self.drain()
        await self.retries.close()
        await self.alerts.drain()
        await self.ledger.close()
