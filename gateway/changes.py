"""Change notices between gateway replicas, for in-process caches that must not go stale.

A service publishes `(topic, payload)` when it changes something cached elsewhere (a key
revoked, a label moved); every replica's handlers for that topic run within milliseconds.
With Redis the notices travel over pub/sub; without it they stay in the process. While the
Redis subscription is down, `healthy` is False so caches shorten their lifetime, and on
reconnect every handler gets the payload `*` ("forget everything") for the notices it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis

__all__ = ["FORGET_ALL", "ChangeFeed", "LocalChangeFeed", "RedisChangeFeed"]

log = logging.getLogger("sluice.changes")

FORGET_ALL = "*"
CHANNEL = "sluice:changes"

Handler = Callable[[str], None]


class ChangeFeed(Protocol):
    @property
    def healthy(self) -> bool: ...

    def subscribe(self, topic: str, handler: Handler) -> None: ...

    async def publish(self, topic: str, payload: str) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class LocalChangeFeed:
    """One process: a notice reaches the handlers directly."""

    def __init__(self) -> None:
        self._handlers: defaultdict[str, list[Handler]] = defaultdict(list)

    @property
    def healthy(self) -> bool:
        return True

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    async def publish(self, topic: str, payload: str) -> None:
        self._dispatch(topic, payload)

    def _dispatch(self, topic: str, payload: str) -> None:
        for handler in self._handlers.get(topic, ()):
            try:
                handler(payload)
            except Exception:
                log.exception("change handler for %s failed", topic)

    def _dispatch_all(self, payload: str) -> None:
        for topic in list(self._handlers):
            self._dispatch(topic, payload)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisChangeFeed(LocalChangeFeed):
    """Many replicas: notices go through one Redis pub/sub channel."""

    def __init__(self, redis: Redis) -> None:
        super().__init__()
        self._redis = redis
        self._task: asyncio.Task[None] | None = None
        self._healthy = False
        self._subscribed = asyncio.Event()

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def publish(self, topic: str, payload: str) -> None:
        # Apply locally first: this replica must see its own change even if Redis is down.
        self._dispatch(topic, payload)
        try:
            await self._redis.publish(CHANNEL, f"{topic}\n{payload}")
        except Exception:
            log.warning("could not publish change %s to Redis; other replicas rely on TTLs", topic)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="sluice-change-feed")
        # Don't block startup on Redis; a short wait makes the usual case deterministic.
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout=2)
        except TimeoutError:
            log.warning("change feed not subscribed yet; caches use short lifetimes until it is")

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    if not self._healthy and self._subscribed.is_set():
                        self._dispatch_all(FORGET_ALL)  # we may have missed notices
                    self._healthy = True
                    self._subscribed.set()
                    backoff = 0.1
                    async for message in pubsub.listen():
                        data = message.get("data")
                        if isinstance(data, bytes):
                            data = data.decode()
                        if isinstance(data, str) and "\n" in data:
                            topic, payload = data.split("\n", 1)
                            self._dispatch(topic, payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._healthy:
                    log.warning("change feed lost its Redis subscription: %s", type(exc).__name__)
                self._healthy = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
