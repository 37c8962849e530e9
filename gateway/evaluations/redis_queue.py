"""The evaluation queue on a Redis Stream with one consumer group, shared by every worker.

A job is a stream entry read with XREADGROUP; an ack is XACK plus XDEL, so the stream holds only
work not yet done and its length is the backlog. A worker refreshes the jobs it is running with
XCLAIM ... JUSTID (a heartbeat that resets their idle time), so only the jobs of a worker that
went silent — crashed, killed, or that failed them — become idle; after `retry_after` seconds
any worker takes them over with XAUTOCLAIM (`lua/claim.lua`), which counts each unacknowledged
delivery as a failed attempt and moves a job past `max_failures` to the dead-letter stream with
its last error. Keys carry the hash tag `{sluice-evaluations}` so the scripts stay atomic on a
Redis Cluster. A flushed Redis loses the queue, and its consumer group is recreated on first
use; the sweep finds the lost responses again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from importlib.resources import files
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from gateway.db.base import utcnow
from gateway.evaluations.queue import CRASHED, Delivery
from gateway.evaluations.records import DeadLetter, Job, QueueDepth

__all__ = ["GROUP", "PREFIX", "RedisStreamQueue"]

PREFIX = "sluice:{sluice-evaluations}:"
GROUP = "evaluators"
ENQUEUE_CHUNK = 500
"""Jobs per script call: bounds how long one call keeps Redis busy."""
_decode_job = msgspec.json.Decoder(Job).decode
_encode = msgspec.json.Encoder().encode


def _script(redis: Redis, name: str) -> AsyncScript:
    return redis.register_script(
        files("gateway.evaluations").joinpath("lua", f"{name}.lua").read_text()
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _job(raw: Any) -> Job:
    try:
        return _decode_job(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return Job(request_log_id="")  # the worker fails it, so it ends up in dead letters


class RedisStreamQueue:
    def __init__(
        self,
        redis: Redis,
        *,
        max_failures: int,
        retry_after: float,
        on_dead_lettered: Callable[[int], None] = lambda n: None,
        prefix: str = PREFIX,
    ) -> None:
        self._redis = redis
        self._max_failures = max_failures
        self._retry_after_ms = max(1, int(retry_after * 1000))
        self._on_dead = on_dead_lettered
        self.jobs_key = prefix + "jobs"
        self.dead_key = prefix + "dead"
        self.errors_key = prefix + "errors"
        self.lead_key = prefix + "sweep"
        self._enqueue = _script(redis, "enqueue")
        self._claim = _script(redis, "claim")
        self._requeue = _script(redis, "requeue")

    async def start(self) -> None:
        await self._ensure_group()

    async def _ensure_group(self) -> None:
        try:
            # From id 0: jobs added before the group existed (or after a flush) are not skipped.
            await self._redis.xgroup_create(self.jobs_key, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _grouped(self, call: Callable[[], Any]) -> Any:
        """Run `call`; if Redis lost the group (flushed, restarted empty), recreate it once."""
        try:
            return await call()
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self._ensure_group()
            return await call()

    async def enqueue(self, jobs: Sequence[Job]) -> None:
        for start in range(0, len(jobs), ENQUEUE_CHUNK):
            chunk = jobs[start : start + ENQUEUE_CHUNK]
            await self._enqueue(keys=[self.jobs_key], args=[_encode(job) for job in chunk])

    async def receive(self, consumer: str, count: int, wait_s: float) -> list[Delivery]:
        def read() -> Any:
            return self._redis.xreadgroup(
                GROUP,
                consumer,
                {self.jobs_key: ">"},
                count=count,
                block=max(1, int(wait_s * 1000)),
            )

        answer = await self._grouped(read)
        deliveries = []
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                deliveries.append(Delivery(_text(entry_id), _job(fields.get(b"job", b""))))
        return deliveries

    async def keep_alive(self, consumer: str, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            ids: list[Any] = [d.id for d in deliveries]
            await self._redis.xclaim(self.jobs_key, GROUP, consumer, 0, ids, justid=True)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        ids = [d.id for d in deliveries]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.jobs_key, GROUP, *ids)
            pipe.xdel(self.jobs_key, *ids)
            pipe.hdel(self.errors_key, *ids)
            await pipe.execute()

    async def fail(self, delivery: Delivery, error: str) -> None:
        # The entry stays pending and unrefreshed: `reclaim` offers it again, or buries it.
        await self._redis.hset(self.errors_key, delivery.id, error[:2000])

    async def reclaim(self, consumer: str, count: int) -> list[Delivery]:
        def claim() -> Any:
            return self._claim(
                keys=[self.jobs_key, self.dead_key, self.errors_key],
                args=[
                    GROUP,
                    consumer,
                    self._retry_after_ms,
                    count,
                    self._max_failures,
                    utcnow().isoformat(),
                    CRASHED,
                ],
            )

        buried, live = await self._grouped(claim)
        if buried:
            self._on_dead(int(buried))
        return [Delivery(_text(i), _job(job), int(failures)) for i, job, failures in live]

    async def depth(self) -> QueueDepth:
        async def read() -> Any:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xlen(self.jobs_key)
                pipe.xpending(self.jobs_key, GROUP)
                pipe.xlen(self.dead_key)
                return await pipe.execute()

        length, pending, dead = await self._grouped(read)
        in_flight = int(pending["pending"]) if isinstance(pending, dict) else int(pending[0])
        return QueueDepth(waiting=max(0, length - in_flight), in_flight=in_flight, dead=dead)

    async def dead_letters(self, *, limit: int, before: str | None) -> list[DeadLetter]:
        newest = f"({before}" if before else "+"
        entries: Any = await self._redis.xrevrange(self.dead_key, newest, "-", count=limit)
        letters = []
        for entry_id, fields in entries or []:
            failed_at = _text(fields.get(b"failed_at", b""))
            letters.append(
                DeadLetter(
                    id=_text(entry_id),
                    job=_job(fields.get(b"job", b"")),
                    error=_text(fields.get(b"error", b"")),
                    failures=int(fields.get(b"failures", 0)),
                    failed_at=datetime.fromisoformat(failed_at) if failed_at else utcnow(),
                )
            )
        return letters

    async def requeue(self, dead_id: str) -> bool:
        try:
            moved = await self._requeue(keys=[self.dead_key, self.jobs_key], args=[dead_id])
        except ResponseError as exc:
            if "Invalid stream ID" in str(exc):
                return False
            raise
        return bool(moved)

    async def lead(self, consumer: str, seconds: float) -> bool:
        won = await self._redis.set(
            self.lead_key, consumer, nx=True, px=max(1, int(seconds * 1000))
        )
        return bool(won)

    async def close(self) -> None:
        return None  # the Redis client belongs to the runtime
