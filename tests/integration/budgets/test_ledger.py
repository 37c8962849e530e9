"""The ledger's semantics, run on Redis (Lua) and in-process: both must give the same answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.budgets.ledger import CounterRef, CounterState, Hold, LedgerUnavailable
from gateway.budgets.redis_ledger import PREFIX, RedisLedger
from gateway.budgets.redis_py_ledger import RedisPyConnection, RedisPyLedger
from gateway.budgets.resp import RespConnection
from gateway.clock import unix_ms
from sluice_devtools.server_thread import free_port
from tests.integration.budgets.harness import Clock

A = CounterRef("a:2026-11-21", limit=100, soft=None, expire_at=0)
B = CounterRef("b:2026-11", limit=50, soft=30, expire_at=0)
NOW = 1_800_000_000_000
TTL = 10_000


async def _reserve(
    ledger: Any, rid: str, amount: int, refs: list[CounterRef], now: int = NOW
) -> Any:
    return await ledger.reserve(rid, amount, refs, now_ms=now, expires_at_ms=now + TTL)


async def test_missing_counters_are_reported_not_assumed_zero(
    ledger_factory: Callable[[], Any],
) -> None:
    ledger = await ledger_factory()
    outcome = await _reserve(ledger, "r1", 10, [A, B])
    assert outcome.missing == (0, 1)
    assert await ledger.install(A, 0, now_ms=NOW)
    assert not await ledger.install(A, 999, now_ms=NOW)  # never overwrites
    assert (await _reserve(ledger, "r1", 10, [A, B])).missing == (1,)
    assert await ledger.status([A, B], now_ms=NOW) == (CounterState(0, 0), None)


async def test_a_reservation_holds_on_all_counters_or_on_none(
    ledger_factory: Callable[[], Any],
) -> None:
    ledger = await ledger_factory()
    await ledger.install(A, 0, now_ms=NOW)
    await ledger.install(B, 20, now_ms=NOW)
    held = await _reserve(ledger, "r1", 25, [A, B])
    assert (held.exceeded, held.remaining) == (None, (75, 5))
    refused = await _reserve(ledger, "r2", 6, [A, B])
    assert (refused.exceeded, refused.remaining[1]) == (1, 5)
    assert await ledger.status([A, B], now_ms=NOW) == (CounterState(0, 25), CounterState(20, 25))


async def test_settle_releases_the_hold_adds_the_cost_once_and_flags_the_soft_limit(
    ledger_factory: Callable[[], Any],
) -> None:
    ledger = await ledger_factory()
    await ledger.install(A, 0, now_ms=NOW)
    await ledger.install(B, 20, now_ms=NOW)
    await _reserve(ledger, "r1", 25, [A, B])
    settled = await ledger.settle("r1", 12, [A, B], marker_ttl_s=60)
    assert settled.counters == (CounterState(12, 0), CounterState(32, 0))
    assert settled.alerts == (1,)  # B's soft limit is 30
    again = await ledger.settle("r1", 12, [A, B], marker_ttl_s=60)
    assert again.duplicate
    await _reserve(ledger, "r2", 1, [A, B])
    later = await ledger.settle("r2", 1, [A, B], marker_ttl_s=60)
    assert later.alerts == ()  # once per window
    assert await ledger.status([A, B], now_ms=NOW) == (CounterState(13, 0), CounterState(33, 0))


async def test_holds_of_a_crashed_gateway_expire(ledger_factory: Callable[[], Any]) -> None:
    ledger = await ledger_factory()
    await ledger.install(A, 0, now_ms=NOW)
    await _reserve(ledger, "crashed", 90, [A])
    assert (await _reserve(ledger, "r2", 20, [A], now=NOW + TTL - 1)).exceeded == 0
    assert await ledger.status([A], now_ms=NOW + TTL) == (CounterState(0, 0),)
    assert (await _reserve(ledger, "r3", 100, [A], now=NOW + TTL)).exceeded is None
    # The crashed gateway's late settlement still adds its real cost.
    late = await ledger.settle("crashed", 7, [A], marker_ttl_s=60)
    assert late.counters == (CounterState(7, 100),)


async def test_a_retried_settlement_skips_counters_rebuilt_since_it_failed(
    ledger_factory: Callable[[], Any],
) -> None:
    ledger = await ledger_factory()
    await ledger.install(A, 0, now_ms=NOW)
    await _reserve(ledger, "r1", 10, [A])
    # The store is lost after the first attempt failed at NOW + 5; the counter is rebuilt from
    # the log (which holds r1's cost, 4) at NOW + 9.
    ledger = await ledger_factory()
    await ledger.install(A, 4, now_ms=NOW + 9)
    retried = await ledger.settle("r1", 4, [A], failed_at_ms=NOW + 5, marker_ttl_s=60)
    assert retried.counters == (CounterState(4, 0),)
    # Not rebuilt since the failure (the store was only unreachable): the cost is added.
    await _reserve(ledger, "r2", 10, [A])
    retried = await ledger.settle("r2", 3, [A], failed_at_ms=NOW + 20, marker_ttl_s=60)
    assert retried.counters == (CounterState(7, 0),)


async def test_a_counter_rebuilt_under_live_holds_keeps_them_reserved(
    ledger_factory: Callable[[], Any],
) -> None:
    ledger = await ledger_factory()
    await ledger.install(A, 0, now_ms=NOW)
    await _reserve(ledger, "r1", 30, [A])
    if isinstance(ledger, RedisLedger):  # evict just the counter, as Redis may under pressure
        await ledger.connection.call("DEL", f"{PREFIX}c:{A.key}")
    else:
        ledger._counters.clear()
    assert (await _reserve(ledger, "r2", 1, [A])).missing == (0,)
    await ledger.install(A, 5, now_ms=NOW)
    assert await ledger.status([A], now_ms=NOW) == (CounterState(5, 30),)


async def test_concurrent_reservations_from_two_clients_never_overspend(
    ledger_factory: Callable[[], Any], ledger_kind: str, request: pytest.FixtureRequest
) -> None:
    first = await ledger_factory()
    second = first
    if ledger_kind == "redis":  # a second connection, as a second gateway would have
        second = RedisLedger(RespConnection(request.getfixturevalue("redis_url")))
    elif ledger_kind == "redis-py":
        second = RedisPyLedger(RedisPyConnection(request.getfixturevalue("redis_url")))
    await first.install(A, 0, now_ms=NOW)
    outcomes = await asyncio.gather(
        *(_reserve(first if i % 2 else second, f"r{i}", 9, [A]) for i in range(100))
    )
    assert sum(not o.missing and o.exceeded is None for o in outcomes) == 11  # 99 <= 100
    assert await first.status([A], now_ms=NOW) == (CounterState(0, 99),)
    await second.close()


async def test_a_settlement_begun_takes_effect_before_any_later_call(
    ledger_factory: Callable[[], Any],
) -> None:
    """redis-py sends from a pool, not one socket in order: a reserve right after a begun
    settlement must still see the hold released and the cost added."""
    ledger = await ledger_factory()
    await ledger.install(A, 0, now_ms=NOW)
    await _reserve(ledger, "r1", 90, [A])
    pending = ledger.begin_settle("r1", 10, [A], marker_ttl_s=60)
    held = await _reserve(ledger, "r2", 90, [A])  # fits only once r1's 90 is released
    assert (held.exceeded, held.remaining) == (None, (0,))
    assert (await pending).counters[0] is not None
    assert await ledger.status([A], now_ms=NOW) == (CounterState(10, 90),)


@pytest.mark.parametrize("client", ["resp", "redis-py"])
async def test_an_unreachable_redis_is_unavailable_not_an_error(client: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    ledger = (
        RedisLedger(RespConnection(url), timeout=1)
        if client == "resp"
        else RedisPyLedger(RedisPyConnection(url), timeout=1)
    )
    with pytest.raises(LedgerUnavailable):
        await _reserve(ledger, "r1", 1, [A])
    with pytest.raises(LedgerUnavailable):
        await ledger.settle("r1", 1, [A], marker_ttl_s=60)
    await ledger.close()


async def test_the_installer_puts_its_holds_in_flight_back(
    ledger_factory: Callable[[], Any],
) -> None:
    ledger = await ledger_factory()
    holds = [Hold("r1", 30, NOW + TTL), Hold("r2", 20, NOW + 5)]
    assert await ledger.install(A, 10, now_ms=NOW, holds=holds)
    assert await ledger.status([A], now_ms=NOW) == (CounterState(10, 50),)
    assert await ledger.status([A], now_ms=NOW + 5) == (CounterState(10, 30),)  # r2 expired
    settled = await ledger.settle("r1", 25, [A], marker_ttl_s=60)
    assert settled.counters == (CounterState(35, 0),)


async def test_counters_live_by_the_callers_clock_not_the_stores(
    ledger_factory: Callable[..., Any],
) -> None:
    """A service whose clock is far from the store's (a test's frozen clock, a skewed host)
    keeps a counter exactly as long as its window lasts on the service's own clock."""
    past = datetime(2020, 1, 1, tzinfo=UTC)
    clock = Clock(past)
    ledger = await ledger_factory(clock)
    now_ms = unix_ms(past)
    # Forgotten an hour from `past`: long ago on the real clock, still ahead on the caller's.
    ref = CounterRef("c:2020-01-01", limit=100, soft=None, expire_at=now_ms // 1000 + 3600)
    assert await ledger.install(ref, 7, now_ms=now_ms)
    assert await ledger.status([ref], now_ms=now_ms) == (CounterState(7, 0),)
    held = await ledger.reserve("r1", 5, [ref], now_ms=now_ms, expires_at_ms=now_ms + TTL)
    assert held.remaining == (88,)
    assert await ledger.status([ref], now_ms=now_ms) == (CounterState(7, 5),)


async def test_money_only_moves_forward_in_the_ledger(
    ledger_factory: Callable[[], Any],
) -> None:
    """Whatever a caller passes, a settlement never credits a counter and an install never
    starts one below zero."""
    ledger = await ledger_factory()
    await ledger.install(A, 40, now_ms=NOW)
    await _reserve(ledger, "r1", 10, [A])
    await ledger.settle("r1", -1_000_000, [A], marker_ttl_s=60)
    assert await ledger.status([A], now_ms=NOW) == (CounterState(40, 0),)
    await _reserve(ledger, "r2", 10, [A])
    await ledger.begin_settle("r2", -5, [A], marker_ttl_s=60)
    assert await ledger.status([A], now_ms=NOW) == (CounterState(40, 0),)
    assert await ledger.install(B, -1_000_000, now_ms=NOW)
    assert await ledger.status([B], now_ms=NOW) == (CounterState(0, 0),)


async def test_a_negative_spend_left_in_redis_by_an_older_gateway_is_no_room(
    redis_url: str,
) -> None:
    connection = RespConnection(redis_url)
    await connection.call("FLUSHDB")
    ledger = RedisLedger(connection)
    try:
        await connection.call("HSET", f"{PREFIX}c:{A.key}", "spent", -1000, "reserved", 0)
        refused = await _reserve(ledger, "r1", A.limit + 1, [A])
        assert (refused.exceeded, refused.remaining) == (0, (A.limit,))
    finally:
        await ledger.close()
