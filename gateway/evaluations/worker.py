"""The evaluation worker: takes jobs from a queue and runs them, a bounded number at a time.

Used by `sluice worker` on the Redis queue and by the embedded gateway on the in-process one.
Beside the receiving loop it keeps its running jobs alive (so nobody claims them), takes over
jobs of silent workers and, when it holds the lead, sweeps for responses whose evaluation was
lost. `stop()` stops taking jobs; `run()` then waits up to `drain_timeout` for running ones
(a job cut off is retried by another worker later).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence

from gateway.evaluations.metrics import EvaluationMetrics
from gateway.evaluations.processor import EvaluationProcessor
from gateway.evaluations.queue import Delivery, EvaluationQueue
from gateway.evaluations.sweep import Sweeper

__all__ = ["EvaluationWorker", "default_consumer_name"]

log = logging.getLogger("sluice.evaluations")

MAX_BATCH = 100
RECEIVE_WAIT_S = 0.5


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class EvaluationWorker:
    def __init__(
        self,
        queue: EvaluationQueue,
        processor: EvaluationProcessor,
        metrics: EvaluationMetrics,
        *,
        name: str,
        concurrency: int,
        retry_after: float,
        sweeper: Sweeper | None = None,
        sweep_interval: float = 60.0,
        drain_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self._queue = queue
        self._processor = processor
        self._metrics = metrics
        self._concurrency = concurrency
        self._tick = max(0.05, retry_after / 3)
        self._sweeper = sweeper
        self._sweep_interval = sweep_interval
        self._drain_timeout = drain_timeout
        self._in_flight: dict[str, Delivery] = {}
        self._batches: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def stop(self) -> None:
        self._stopping.set()
        self._slot_freed.set()

    async def run(self) -> None:
        await self._queue.start()
        helpers = [
            asyncio.create_task(self._every(self._tick, self._keep_alive), name="eval-keepalive"),
            asyncio.create_task(self._every(self._tick, self._reclaim), name="eval-reclaim"),
        ]
        if self._sweeper is not None:
            helpers.append(
                asyncio.create_task(self._every(self._sweep_interval, self._sweep), name="sweep")
            )
        try:
            await self._receive_until_stopped()
        finally:
            await self._drain()
            for helper in helpers:
                helper.cancel()
            for helper in helpers:
                with contextlib.suppress(asyncio.CancelledError):
                    await helper

    async def _receive_until_stopped(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            free = self._concurrency - len(self._in_flight)
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                deliveries = await self._queue.receive(
                    self.name, min(free, MAX_BATCH), RECEIVE_WAIT_S
                )
            except Exception as exc:
                log.warning("evaluation queue unavailable (%s); retrying", type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            if deliveries:
                self._start(deliveries)

    def _start(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            self._in_flight[delivery.id] = delivery
        task = asyncio.create_task(self._process(deliveries))
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)

    async def _process(self, deliveries: Sequence[Delivery]) -> None:
        unfinished = {d.id: d for d in deliveries}

        async def done(finished: Sequence[Delivery], error: str | None) -> None:
            for delivery in finished:
                unfinished.pop(delivery.id, None)
            try:
                if error is None:
                    await self._queue.ack(finished)
                    self._metrics.jobs.labels("done").inc(len(finished))
                else:
                    log.warning("evaluation job failed: %s", error)
                    for delivery in finished:
                        await self._queue.fail(delivery, error)
                    self._metrics.jobs.labels("failed").inc(len(finished))
            except Exception as exc:
                # Unacknowledged, the jobs come back after the claim timeout: nothing is lost.
                log.warning("could not report jobs to the queue (%s)", type(exc).__name__)
            finally:
                for delivery in finished:
                    self._in_flight.pop(delivery.id, None)
                self._slot_freed.set()

        try:
            await self._processor.run_jobs(deliveries, done)
        except asyncio.CancelledError:
            for delivery in unfinished.values():
                self._in_flight.pop(delivery.id, None)
            raise
        except Exception as exc:
            log.exception("evaluation batch failed")
            await done(list(unfinished.values()), f"{type(exc).__name__}: {exc}")

    async def _drain(self) -> None:
        if not self._batches:
            return
        _, pending = await asyncio.wait(set(self._batches), timeout=self._drain_timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning(
                "stopped with %d evaluation jobs unfinished; they will be retried", len(pending)
            )
            await asyncio.wait(pending)

    async def _every(self, seconds: float, step: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("evaluation worker %s failed: %s", step.__name__, type(exc).__name__)
            await asyncio.sleep(seconds)

    async def _keep_alive(self) -> None:
        await self._queue.keep_alive(self.name, list(self._in_flight.values()))

    async def _reclaim(self) -> None:
        free = self._concurrency - len(self._in_flight)
        if free > 0 and not self._stopping.is_set():
            deliveries = await self._queue.reclaim(self.name, min(free, MAX_BATCH))
            if deliveries:
                log.info("took over %d evaluation jobs from silent workers", len(deliveries))
                self._start(deliveries)

    async def _sweep(self) -> None:
        if self._sweeper is None or self._stopping.is_set():
            return
        if await self._queue.lead(self.name, self._sweep_interval * 0.9):
            found = await self._sweeper.sweep()
            if found:
                log.info("sweep re-enqueued %d unevaluated responses", found)
