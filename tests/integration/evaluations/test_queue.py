"""The evaluation queue's contract, on real Redis Streams and in-process alike: delivery, acks,
retries, dead letters, requeue, claiming a silent consumer's jobs, and a flushed Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.evaluations.queue import CRASHED, Delivery, EvaluationQueue, InProcessQueue
from gateway.evaluations.records import Job
from gateway.evaluations.redis_queue import RedisStreamQueue

RETRY_AFTER = 0.3
MAX_FAILURES = 3


class Buried:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, n: int) -> None:
        self.count += n


@pytest.fixture(params=["redis", "in-process"])
async def queue_and_buried(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[EvaluationQueue, Buried, Redis | None]]:
    buried = Buried()
    if request.param == "in-process":
        queue: EvaluationQueue = InProcessQueue(
            max_failures=MAX_FAILURES, retry_after=RETRY_AFTER, on_dead_lettered=buried
        )
        await queue.start()
        yield queue, buried, None
        await queue.close()
        return
    redis_url = request.getfixturevalue("redis_url")
    client = Redis.from_url(redis_url)
    queue = RedisStreamQueue(
        client, max_failures=MAX_FAILURES, retry_after=RETRY_AFTER, on_dead_lettered=buried
    )
    await queue.start()
    yield queue, buried, client
    await client.aclose()


async def _eventually(step: Callable[[], Awaitable[list[Any]]], timeout: float = 5.0) -> list[Any]:
    """Call `step` until it returns something (poll with a deadline, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await step()
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError("nothing arrived before the deadline")


async def _take(queue: EvaluationQueue, consumer: str) -> list[Delivery]:
    """A job: new from the queue, or one offered again (retry, silent consumer)."""

    async def step() -> list[Delivery]:
        return await queue.receive(consumer, 10, 0.05) or await queue.reclaim(consumer, 10)

    return await _eventually(step)


async def test_jobs_are_delivered_once_and_acked(queue_and_buried: Any) -> None:
    queue, _, _ = queue_and_buried
    await queue.enqueue([Job(request_log_id=f"row-{i}") for i in range(5)])
    assert (await queue.depth()).waiting == 5
    first = await queue.receive("a", 3, 0.1)
    second = await queue.receive("b", 10, 0.1)
    assert [d.job.request_log_id for d in first + second] == [f"row-{i}" for i in range(5)]
    assert all(d.failures == 0 for d in first + second)
    depth = await queue.depth()
    assert (depth.waiting, depth.in_flight, depth.dead) == (0, 5, 0)
    await queue.ack(first + second)
    depth = await queue.depth()
    assert (depth.waiting, depth.in_flight) == (0, 0)
    assert await queue.receive("a", 10, 0.05) == []


async def test_failing_job_is_retried_then_dead_lettered_then_requeued(
    queue_and_buried: Any,
) -> None:
    queue, buried, _ = queue_and_buried
    await queue.enqueue([Job(request_log_id="doomed")])
    seen = []
    for attempt in range(MAX_FAILURES):
        [delivery] = await _take(queue, "worker")
        assert delivery.failures == attempt
        seen.append(delivery)
        await queue.fail(delivery, f"boom {attempt}")

    async def dead() -> list[Any]:
        await queue.reclaim("worker", 10)  # on Redis, burying happens when it is claimed again
        return await queue.dead_letters(limit=10, before=None)

    letters = await _eventually(dead)
    assert len(letters) == 1
    letter = letters[0]
    assert letter.job.request_log_id == "doomed"
    assert (letter.failures, letter.error) == (MAX_FAILURES, f"boom {MAX_FAILURES - 1}")
    assert buried.count == 1
    depth = await queue.depth()
    assert (depth.waiting, depth.in_flight, depth.dead) == (0, 0, 1)

    assert await queue.requeue("no-such-letter") is False
    assert await queue.requeue(letter.id) is True
    assert await queue.dead_letters(limit=10, before=None) == []
    [again] = await _take(queue, "worker")
    assert again.job.request_log_id == "doomed" and again.failures == 0
    await queue.ack([again])


@pytest.mark.redis
async def test_silent_consumers_jobs_are_claimed_and_live_ones_are_not(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    buried = Buried()
    queue = RedisStreamQueue(
        client, max_failures=2, retry_after=RETRY_AFTER, on_dead_lettered=buried
    )
    await queue.start()
    try:
        await queue.enqueue([Job(request_log_id="alive"), Job(request_log_id="orphan")])
        alive, orphan = await queue.receive("busy", 1, 0.1) + await queue.receive("killed", 1, 0.1)
        # "busy" keeps its job alive; "killed" went silent. Only the orphan is taken over.
        deadline = time.monotonic() + 5
        claimed: list[Delivery] = []
        while not claimed and time.monotonic() < deadline:
            await queue.keep_alive("busy", [alive])
            claimed = await queue.reclaim("rescuer", 10)
            await asyncio.sleep(0.02)
        assert [(d.id, d.job.request_log_id, d.failures) for d in claimed] == [
            (orphan.id, "orphan", 1)
        ]
        await queue.ack([alive, *claimed])
        # A job whose every worker dies goes to the dead letters, named as such.
        await queue.enqueue([Job(request_log_id="cursed")])
        await queue.receive("killed-1", 1, 0.1)
        await _eventually(lambda: queue.reclaim("killed-2", 1))  # taken, then killed again

        async def letters() -> list[Any]:
            await queue.reclaim("rescuer", 10)
            return await queue.dead_letters(limit=10, before=None)

        [letter] = await _eventually(letters)
        assert (letter.job.request_log_id, letter.error, letter.failures) == ("cursed", CRASHED, 2)
        assert buried.count == 1
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_a_flushed_redis_is_survived(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    queue = RedisStreamQueue(client, max_failures=3, retry_after=RETRY_AFTER)
    await queue.start()
    try:
        await queue.enqueue([Job(request_log_id="lost")])
        await client.flushdb()
        assert await queue.receive("w", 10, 0.05) == []  # the group comes back, empty
        assert (await queue.depth()).waiting == 0
        await queue.enqueue([Job(request_log_id="after")])
        [delivery] = await queue.receive("w", 10, 0.1)
        assert delivery.job.request_log_id == "after"
        await client.flushdb()
        assert await queue.reclaim("w", 10) == []
        await queue.ack([delivery])  # acking a job Redis forgot is harmless
        # A malformed entry is delivered as a job with no response, so the worker fails it.
        await client.xadd(queue.jobs_key, {"job": b"{not json"})
        [broken] = await queue.receive("w", 10, 0.1)
        assert broken.job.request_log_id == ""
    finally:
        await client.aclose()


async def test_only_one_consumer_leads_the_sweep(queue_and_buried: Any) -> None:
    queue, _, client = queue_and_buried
    assert await queue.lead("a", 5) is True
    if client is not None:
        assert await queue.lead("b", 5) is False
