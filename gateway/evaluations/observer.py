"""Inline evaluation: score production responses in the gateway, after they are sent and logged.

`observe` runs on the request path after the response went out, so it only notes the
response's output text (a dict insert; nothing at all for versions known to be unmonitored).
When the request log writes the response's row, `on_logged` hands it to a background task that
runs the inline specs and enqueues the response's job carrying their results: a worker stores
them (the row they point at now exists) and runs the queued specs. Writing rows is left to the
worker because it costs the gateway more than scoring. Nothing here ever waits on the request
path; whatever is lost (the process stops, the backlog overflows) is found again by the sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence

from gateway.evaluations.metrics import EvaluationMetrics
from gateway.evaluations.plans import PlanCache
from gateway.evaluations.processor import EvaluationProcessor
from gateway.evaluations.queue import EvaluationQueue
from gateway.proxy.context import CallContext
from gateway.requestlog.entry import LogEntry

__all__ = ["InlineEvaluations"]

log = logging.getLogger("sluice.evaluations")

# Responses scored and enqueued together: one pipelined XADD per batch.
BATCH = 100
_ABSENT = object()


class InlineEvaluations:
    """A `ResponseObserver` and a request-log listener."""

    def __init__(
        self,
        processor: EvaluationProcessor,
        queue: EvaluationQueue,
        plans: PlanCache,
        metrics: EvaluationMetrics,
        *,
        max_pending: int = 50_000,
    ) -> None:
        self._processor = processor
        self._queue = queue
        self._plans = plans
        self._metrics = metrics
        self._max_pending = max_pending
        self._pending: dict[str, str | None] = {}
        self._ready: deque[tuple[LogEntry, str | None]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def observe(self, entry: LogEntry, call: CallContext, output_text: str | None) -> None:
        if (
            self._closing
            or entry.is_test_run
            or entry.prompt_version_id is None
            or not 200 <= entry.status_code < 300
            or self._plans.peek(entry.prompt_version_id) is None  # known to be unmonitored
        ):
            return
        if len(self._pending) >= self._max_pending:
            # Rows that never got written (a full log buffer) must not pin memory forever.
            del self._pending[next(iter(self._pending))]
            self._metrics.dropped.inc()
        self._pending[entry.id] = output_text

    async def on_logged(self, batch: Sequence[LogEntry]) -> None:
        if not self._pending:
            return
        for entry in batch:
            text = self._pending.pop(entry.id, _ABSENT)
            if text is not _ABSENT:
                self._ready.append((entry, text if isinstance(text, str) else None))
        if self._ready:
            self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sluice-inline-evaluations")

    async def _run(self) -> None:
        while not self._closing or self._ready:
            if not self._ready:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            items = [self._ready.popleft() for _ in range(min(BATCH, len(self._ready)))]
            await self._evaluate(items)

    async def _evaluate(self, items: list[tuple[LogEntry, str | None]]) -> None:
        try:
            jobs = await self._processor.evaluate_logged(items)
        except Exception:
            log.exception("inline evaluation of %d responses failed; the sweep retries", len(items))
            return
        if not jobs:
            return
        try:
            await self._queue.enqueue(jobs)
            self._metrics.enqueued.labels("gateway").inc(len(jobs))
        except Exception as exc:
            log.warning(
                "could not enqueue %d evaluation jobs (%s); the sweep retries",
                len(jobs),
                type(exc).__name__,
            )

    async def close(self, timeout: float = 5.0) -> None:
        """Finish what is ready, within `timeout`; responses not yet logged are the sweep's."""
        self._closing = True
        self._pending.clear()
        self._wakeup.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._task, timeout)
        except TimeoutError:
            log.warning("inline evaluations cut off at shutdown; the sweep retries them")
        with contextlib.suppress(asyncio.CancelledError):
            self._task.cancel()
            await self._task
