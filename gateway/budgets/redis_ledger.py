"""The budget ledger in Redis: every replica shares the counters; each step is one Lua script.

The scripts live beside this module in `lua/` and run with EVALSHA (EVAL once after a Redis
restart emptied the script cache). Every key carries the hash tag `{sluice-budgets}`, so a
multi-budget reservation stays atomic on Redis Cluster too. Calls go over the ledger's own
pipelined connection (`resp.py`), or redis-py's (`redis_py_ledger.py`). Any failure, or no
answer within `timeout` seconds, is `LedgerUnavailable`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Sequence
from importlib.resources import files
from typing import Any, Protocol

from gateway.budgets.ledger import (
    CounterRef,
    CounterState,
    Hold,
    LedgerUnavailable,
    ReserveOutcome,
    SettleOutcome,
)
from gateway.budgets.resp import Reply, ReplyError

__all__ = ["PREFIX", "Commands", "RedisLedger"]

PREFIX = "sluice:{sluice-budgets}:"


class _Script:
    def __init__(self, name: str) -> None:
        self.text = files("gateway.budgets.lua").joinpath(f"{name}.lua").read_text()
        self.sha = hashlib.sha1(self.text.encode()).hexdigest()  # noqa: S324 (Redis's script id)


_RESERVE, _SETTLE, _INSTALL, _STATUS = (
    _Script(name) for name in ("reserve", "settle", "install", "status")
)


def _keys(ref: CounterRef) -> list[str]:
    return [f"{PREFIX}c:{ref.key}", f"{PREFIX}h:{ref.key}", f"{PREFIX}e:{ref.key}"]


def _settle_call(
    reservation_id: str, cost: int, refs: list[CounterRef], failed_at_ms: int, marker_ttl_s: int
) -> tuple[list[str], list[Any]]:
    keys = [f"{PREFIX}s:{reservation_id}"]
    # Money only moves forward: a settlement never credits a counter, whatever its caller says.
    args: list[Any] = [reservation_id, max(cost, 0), marker_ttl_s, failed_at_ms]
    for ref in refs:
        keys += _keys(ref)
        args.append(-1 if ref.soft is None else ref.soft)
    return keys, args


def _settle_outcome(reply: Reply, count: int) -> SettleOutcome:
    values = _ints(reply)
    if values[0] == 0:
        return SettleOutcome(duplicate=True)
    counters = []
    alerts = []
    for index in range(count):
        exists, spent, reserved, alert = values[1 + 4 * index : 5 + 4 * index]
        counters.append(CounterState(spent, reserved) if exists else None)
        if alert:
            alerts.append(index)
    return SettleOutcome(False, tuple(counters), tuple(alerts))


def _ints(reply: Reply) -> list[int]:
    assert isinstance(reply, list)
    return [int(value) for value in reply]


class Commands(Protocol):
    """What the ledger needs of a Redis connection: `resp.RespConnection` or redis-py's."""

    def send_now(self, *args: str | int | bytes) -> Awaitable[Reply]:
        """Send a command now (in call order, where the connection can); await its reply."""
        ...

    def send_soon(self, *args: str | int | bytes) -> Awaitable[Reply]:
        """`send_now` for a reply nobody waits for on the request path: may share a write."""
        ...

    async def call(self, *args: str | int | bytes) -> Reply: ...

    async def close(self) -> None: ...


class RedisLedger:
    def __init__(self, connection: Commands, *, timeout: float = 2.0) -> None:
        self.connection = connection
        self._timeout = timeout

    async def _reply(self, pending: Awaitable[Reply]) -> Reply:
        try:
            async with asyncio.timeout(self._timeout):
                return await pending
        except (ReplyError, OSError, TimeoutError) as exc:  # ConnectionError is an OSError
            raise LedgerUnavailable(f"Redis: {type(exc).__name__}: {exc}") from exc

    async def _call(self, *args: str | int) -> Reply:
        return await self._reply(self.connection.send_now(*args))

    async def _run(
        self,
        script: _Script,
        keys: list[str],
        args: Sequence[Any],
        sent: Awaitable[Reply] | None = None,
    ) -> Reply:
        """Run `script` (its EVALSHA may be `sent` already), loading it if Redis forgot it."""
        try:
            if sent is None:
                sent = self.connection.send_now("EVALSHA", script.sha, len(keys), *keys, *args)
            return await self._reply(sent)
        except LedgerUnavailable as exc:
            if not str(exc.__cause__).startswith("NOSCRIPT"):
                raise
        # Redis restarted and forgot the script: EVAL sends it and caches it again.
        return await self._call("EVAL", script.text, len(keys), *keys, *args)

    async def reserve(
        self,
        reservation_id: str,
        amount: int,
        refs: list[CounterRef],
        *,
        now_ms: int,
        expires_at_ms: int,
    ) -> ReserveOutcome:
        keys: list[str] = []
        args: list[Any] = [reservation_id, amount, now_ms, expires_at_ms]
        for ref in refs:
            keys += _keys(ref)
            args += [ref.limit, ref.expire_at]
        reply = _ints(await self._run(_RESERVE, keys, args))
        if reply[0] == 0:
            return ReserveOutcome(missing=tuple(i - 1 for i in reply[1:]))
        if reply[0] == 1:
            index = reply[1] - 1
            remaining = [0] * len(refs)
            remaining[index] = reply[2]
            return ReserveOutcome(exceeded=index, remaining=tuple(remaining))
        return ReserveOutcome(remaining=tuple(reply[1:]))

    async def settle(
        self,
        reservation_id: str,
        cost: int,
        refs: list[CounterRef],
        *,
        failed_at_ms: int = 0,
        marker_ttl_s: int,
    ) -> SettleOutcome:
        keys, args = _settle_call(reservation_id, cost, refs, failed_at_ms, marker_ttl_s)
        return _settle_outcome(await self._run(_SETTLE, keys, args), len(refs))

    def begin_settle(
        self,
        reservation_id: str,
        cost: int,
        refs: list[CounterRef],
        *,
        marker_ttl_s: int,
    ) -> Awaitable[SettleOutcome]:
        keys, args = _settle_call(reservation_id, cost, refs, 0, marker_ttl_s)
        # Nobody waits for it before answering: it rides in front of the next reservation.
        sent = self.connection.send_soon("EVALSHA", _SETTLE.sha, len(keys), *keys, *args)
        return self._settled(keys, args, sent, len(refs))

    async def _settled(
        self, keys: list[str], args: list[Any], sent: Awaitable[Reply], count: int
    ) -> SettleOutcome:
        return _settle_outcome(await self._run(_SETTLE, keys, args, sent), count)

    async def install(
        self, ref: CounterRef, spent: int, *, now_ms: int, holds: Sequence[Hold] = ()
    ) -> bool:
        args: list[Any] = [max(spent, 0), now_ms, ref.expire_at]
        for hold in holds:
            args += [hold.reservation_id, hold.amount, hold.expires_at_ms]
        reply = await self._run(_INSTALL, _keys(ref), args)
        return reply == 1

    async def status(
        self, refs: list[CounterRef], *, now_ms: int
    ) -> tuple[CounterState | None, ...]:
        keys = [key for ref in refs for key in _keys(ref)]
        reply = _ints(await self._run(_STATUS, keys, [now_ms]))
        return tuple(
            CounterState(reply[i + 1], reply[i + 2]) if reply[i] else None
            for i in range(0, len(reply), 3)
        )

    async def drop(self, refs: list[CounterRef]) -> None:
        keys = [key for ref in refs for key in _keys(ref)]
        if keys:
            await self._call("DEL", *keys)

    async def ping(self) -> None:
        await self._call("PING")

    async def close(self) -> None:
        await self.connection.close()
