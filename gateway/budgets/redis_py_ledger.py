"""The Redis ledger on redis-py's asyncio client instead of our own RESP connection.

Same Lua scripts, keys and answers as `RedisLedger` (it is one, with another connection under
it), selected by SLUICE_BUDGET_REDIS_CLIENT=redis-py. It is here so the benchmark can show what
the hand-written `resp.py` saves (`bench/run.py --redis redis-py`), and as the fallback should
that connection ever misbehave.

redis-py sends each command from a pooled connection, so two commands of this process are not
ordered on the wire the way they are on `resp.py`'s single socket. The ledger's contract is that
a settlement put in order by `begin_settle` takes effect before any later call: here every
later reserve, install or status first waits for the settlements still in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

import redis.asyncio as aioredis
from redis import exceptions

from gateway.budgets.ledger import CounterRef, CounterState, Hold, ReserveOutcome, SettleOutcome
from gateway.budgets.redis_ledger import RedisLedger
from gateway.budgets.resp import Reply, ReplyError

__all__ = ["RedisPyConnection", "RedisPyLedger"]


class RedisPyConnection:
    """redis-py behind the two calls `RedisLedger` makes of its connection."""

    def __init__(self, url: str) -> None:
        self.client = aioredis.Redis.from_url(url, decode_responses=False)

    def send_now(self, *args: str | int | bytes) -> Awaitable[Reply]:
        return self._call(args)

    def send_soon(self, *args: str | int | bytes) -> Awaitable[Reply]:
        return self._call(args)

    async def _call(self, args: tuple[str | int | bytes, ...]) -> Reply:
        try:
            reply: Reply = await self.client.execute_command(*args)  # type: ignore[no-untyped-call]
        except exceptions.NoScriptError as exc:
            # redis-py strips Redis's error code; RedisLedger reloads scripts on "NOSCRIPT".
            raise ReplyError(f"NOSCRIPT {exc}") from exc
        except exceptions.ResponseError as exc:
            raise ReplyError(str(exc)) from exc
        except (exceptions.ConnectionError, exceptions.TimeoutError) as exc:
            raise ConnectionError(str(exc)) from exc
        return reply

    async def call(self, *args: str | int | bytes) -> Reply:
        return await self._call(args)

    async def close(self) -> None:
        await self.client.aclose()


class RedisPyLedger(RedisLedger):
    def __init__(self, connection: RedisPyConnection, *, timeout: float = 2.0) -> None:
        super().__init__(connection, timeout=timeout)
        self._settling: set[asyncio.Task[SettleOutcome]] = set()

    async def _after_settlements(self) -> None:
        if self._settling:
            await asyncio.wait(list(self._settling))

    def begin_settle(
        self,
        reservation_id: str,
        cost: int,
        refs: list[CounterRef],
        *,
        marker_ttl_s: int,
    ) -> Awaitable[SettleOutcome]:
        task = asyncio.get_running_loop().create_task(
            self.settle(reservation_id, cost, refs, marker_ttl_s=marker_ttl_s)
        )
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        return task

    async def reserve(
        self,
        reservation_id: str,
        amount: int,
        refs: list[CounterRef],
        *,
        now_ms: int,
        expires_at_ms: int,
    ) -> ReserveOutcome:
        await self._after_settlements()
        return await super().reserve(
            reservation_id, amount, refs, now_ms=now_ms, expires_at_ms=expires_at_ms
        )

    async def install(
        self, ref: CounterRef, spent: int, *, now_ms: int, holds: Sequence[Hold] = ()
    ) -> bool:
        await self._after_settlements()
        return await super().install(ref, spent, now_ms=now_ms, holds=holds)

    async def status(
        self, refs: list[CounterRef], *, now_ms: int
    ) -> tuple[CounterState | None, ...]:
        await self._after_settlements()
        return await super().status(refs, now_ms=now_ms)

    async def close(self) -> None:
        await self._after_settlements()
        await super().close()
