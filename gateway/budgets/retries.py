"""Settlements that could not reach the budget store, retried until it answers again.

A settlement that fails (Redis down or silent) leaves its hold in the counter and its cost out
of it; the request's log row holds the cost all the same. The queue retries in the background
with backoff, marking each retry with the time of the first failure so that the ledger skips
counters rebuilt from the log since then (they hold the cost already). The queue is bounded:
past `max_items` the oldest are dropped (their holds expire; a rebuild finds their costs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway.budgets.ledger import LedgerUnavailable

__all__ = ["PendingSettlement", "SettleRetries"]

log = logging.getLogger("sluice.budgets")


@dataclass(frozen=True, slots=True)
class PendingSettlement:
    reservation_id: str
    cost: int
    failed_at_ms: int
    state: Any
    """The reservation's ledger state (counters and budgets), for the retry."""


Retry = Callable[[PendingSettlement], Awaitable[None]]


class SettleRetries:
    def __init__(
        self, retry: Retry, *, on_depth: Callable[[int], None], max_items: int = 100_000
    ) -> None:
        self._retry = retry
        self._on_depth = on_depth
        self._items: deque[PendingSettlement] = deque()
        self._max_items = max_items
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: PendingSettlement) -> None:
        if len(self._items) >= self._max_items:
            self._items.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error(
                    "%d budget settlements dropped while the budget store is down; their "
                    "costs are in the request log",
                    self.dropped,
                )
        self._items.append(item)
        self._on_depth(len(self._items))
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sluice-settle")

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            if not self._items:
                await self._wakeup.wait()
                self._wakeup.clear()
            if await self.flush():
                backoff = 0.1
                continue
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def flush(self) -> bool:
        """Retry everything queued; False when the store is still down."""
        while self._items:
            item = self._items[0]
            try:
                await self._retry(item)
            except LedgerUnavailable:
                return False
            except Exception:
                log.exception("retrying a budget settlement failed; dropping it")
            if self._items and self._items[0] is item:
                self._items.popleft()
            self._on_depth(len(self._items))
        return True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()
        if self._items:
            log.error(
                "shutting down with %d budget settlements unsent; their holds expire and "
                "their costs are in the request log",
                len(self._items),
            )
