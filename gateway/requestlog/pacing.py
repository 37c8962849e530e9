"""Batch work done in steps, so the request path never waits long behind a flush.

The request log's writer shares the event loop with every request. Making 500 rows storable
and encoding them for COPY costs 10-15 ms of CPU at once on a busy 2-core machine, and a flush
runs every ~0.2 s under load: every request that became ready meanwhile waited for the whole
batch (bench/results/tail.md). A `Pacer` is awaited after each row; it hands the loop back once
the current step has run `step_seconds`, so a request waits at most about one step (plus one
row) behind the log, however large the batch or its bodies.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from gateway.requestlog.entry import LogEntry

__all__ = ["STEP_SECONDS", "Pacer", "storable_rows"]

# Below a request's own cost through the gateway at c=32 (~10 ms p50), above the loop's cost
# of one yield (a few µs), so pacing costs nothing measurable in CPU.
STEP_SECONDS = 0.002


class Pacer:
    """Awaited between units of work: yields to the event loop once a step is used up."""

    def __init__(self, step_seconds: float = STEP_SECONDS) -> None:
        self._step = step_seconds
        self._since = time.perf_counter()
        self.yields = 0

    async def __call__(self) -> None:
        if time.perf_counter() - self._since >= self._step:
            await asyncio.sleep(0)
            self.yields += 1
            self._since = time.perf_counter()


async def storable_rows(entries: Sequence[LogEntry], pace: Pacer) -> list[dict[str, Any]]:
    """`entry.as_row()` for each entry, in steps."""
    rows = []
    for entry in entries:
        rows.append(entry.as_row())
        await pace()
    return rows
