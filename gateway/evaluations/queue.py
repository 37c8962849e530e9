"""The evaluation job queue: its protocol, and the in-process queue of the embedded mode.

Semantics shared with the Redis Streams queue (`redis_queue.py`):

    enqueue    add jobs; at-least-once delivery (writes are idempotent, so twice is harmless)
    receive    take up to `count` jobs for a consumer, waiting up to `wait_s` for one
    keep_alive the consumer is still working on these: nobody else may claim them
    ack        done: the jobs leave the queue
    fail       this attempt failed (the error is kept); the job is offered again after
               `retry_after` seconds, and after `max_failures` failed attempts it goes to the
               dead-letter list instead, where `requeue` can send it back
    reclaim    jobs of consumers that went silent (crashed, killed) for `retry_after`, each
               delivery counting as a failed attempt
    lead       only one consumer holds the sweep at a time

Without Redis a crashed process loses its queue; the sweep finds those responses again.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.db.base import utcnow
from gateway.evaluations.records import DeadLetter, Job, QueueDepth
from gateway.ids import new_id

__all__ = ["CRASHED", "Delivery", "EvaluationQueue", "InProcessQueue"]

CRASHED = "the worker stopped answering while running the job (crashed or killed)"
MAX_DEAD_IN_MEMORY = 10_000


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    job: Job
    failures: int = 0
    """Attempts of this job that failed before this one."""


class EvaluationQueue(Protocol):
    async def start(self) -> None: ...

    async def enqueue(self, jobs: Sequence[Job]) -> None: ...

    async def receive(self, consumer: str, count: int, wait_s: float) -> list[Delivery]: ...

    async def keep_alive(self, consumer: str, deliveries: Sequence[Delivery]) -> None: ...

    async def ack(self, deliveries: Sequence[Delivery]) -> None: ...

    async def fail(self, delivery: Delivery, error: str) -> None: ...

    async def reclaim(self, consumer: str, count: int) -> list[Delivery]: ...

    async def depth(self) -> QueueDepth: ...

    async def dead_letters(self, *, limit: int, before: str | None) -> list[DeadLetter]: ...

    async def requeue(self, dead_id: str) -> bool: ...

    async def lead(self, consumer: str, seconds: float) -> bool: ...

    async def close(self) -> None: ...


class InProcessQueue:
    """One process: a deque, retries on the event loop's timer, dead letters in memory."""

    def __init__(
        self,
        *,
        max_failures: int,
        retry_after: float,
        on_dead_lettered: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._max_failures = max_failures
        self._retry_after = retry_after
        self._on_dead = on_dead_lettered
        self._waiting: deque[Delivery] = deque()
        self._in_flight: dict[str, Delivery] = {}
        self._dead: OrderedDict[str, DeadLetter] = OrderedDict()
        self._ready = asyncio.Event()
        self._timers: set[asyncio.TimerHandle] = set()

    async def start(self) -> None:
        return None

    async def enqueue(self, jobs: Sequence[Job]) -> None:
        self._waiting.extend(Delivery(new_id(), job) for job in jobs)
        if self._waiting:
            self._ready.set()

    async def receive(self, consumer: str, count: int, wait_s: float) -> list[Delivery]:
        if not self._waiting:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout=wait_s)
            except TimeoutError:
                return []
        taken: list[Delivery] = []
        while self._waiting and len(taken) < count:
            delivery = self._waiting.popleft()
            self._in_flight[delivery.id] = delivery
            taken.append(delivery)
        return taken

    async def keep_alive(self, consumer: str, deliveries: Sequence[Delivery]) -> None:
        return None  # nobody else can claim a job in this process

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            self._in_flight.pop(delivery.id, None)

    async def fail(self, delivery: Delivery, error: str) -> None:
        self._in_flight.pop(delivery.id, None)
        failures = delivery.failures + 1
        if failures >= self._max_failures:
            self._bury(delivery, error, failures)
            return
        retry = Delivery(delivery.id, delivery.job, failures)

        def offer() -> None:
            self._timers.discard(handle)
            self._waiting.append(retry)
            self._ready.set()

        handle = asyncio.get_running_loop().call_later(self._retry_after, offer)
        self._timers.add(handle)

    def _bury(self, delivery: Delivery, error: str, failures: int) -> None:
        dead_id = f"{time.time_ns()}-{delivery.id}"
        self._dead[dead_id] = DeadLetter(
            id=dead_id, job=delivery.job, error=error, failures=failures, failed_at=utcnow()
        )
        while len(self._dead) > MAX_DEAD_IN_MEMORY:
            self._dead.popitem(last=False)
        self._on_dead(1)

    async def reclaim(self, consumer: str, count: int) -> list[Delivery]:
        return []

    async def depth(self) -> QueueDepth:
        return QueueDepth(
            waiting=len(self._waiting), in_flight=len(self._in_flight), dead=len(self._dead)
        )

    async def dead_letters(self, *, limit: int, before: str | None) -> list[DeadLetter]:
        letters = [d for d in reversed(self._dead.values()) if before is None or d.id < before]
        return letters[:limit]

    async def requeue(self, dead_id: str) -> bool:
        letter = self._dead.pop(dead_id, None)
        if letter is None:
            return False
        job = Job(request_log_id=letter.job.request_log_id, enqueued_by="requeue")
        await self.enqueue([job])
        return True

    async def lead(self, consumer: str, seconds: float) -> bool:
        return True

    async def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
