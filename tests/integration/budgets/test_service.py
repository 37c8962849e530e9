"""The budget service on real stores: windows, rebuilds from the log, alerts, failure modes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from gateway.budgets.local_ledger import LocalLedger
from gateway.budgets.money import from_ticks
from gateway.budgets.redis_ledger import RedisLedger
from gateway.budgets.resp import RespConnection
from gateway.db.engine import create_engine
from gateway.db.migrate import upgrade
from gateway.errors import BudgetExceeded, BudgetStoreUnavailable
from gateway.proxy.stages import Usage
from gateway.tokens.counting import count_chat_prompt
from sluice_devtools.server_thread import free_port
from tests.integration.budgets.harness import ROUTE, BudgetHarness, Clock, build_harness

MESSAGES = [{"role": "user", "content": "Say hello to the budget."}]
PROMPT = count_chat_prompt("gpt-4o-mini", MESSAGES)
# gpt-4o-mini: $0.15 and $0.60 per million input and output tokens.
WORST = (PROMPT * 15 + 100 * 60) * 100  # ticks, with max_tokens=100
REAL = Usage(PROMPT, 40)
REAL_TICKS = (PROMPT * 15 + 40 * 60) * 100


def _body() -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": list(MESSAGES), "max_tokens": 100}


async def _spend(h: BudgetHarness, *, user: str = "alice", at: datetime | None = None) -> Any:
    call = h.call(at=at, user=user)
    reservation = await h.service.reserve(call, ROUTE, _body(), "chat.completions")
    settlement = await h.service.settle(reservation, ROUTE, REAL)
    return reservation, settlement


async def _status(h: BudgetHarness, budget: Any) -> Any:
    [status] = await h.service.status([budget])
    return status


async def test_reserve_then_settle_to_the_real_cost(harness: BudgetHarness) -> None:
    budget = await harness.create("user", "alice", "daily", "1")
    reservation, settlement = await _spend(harness)
    assert reservation.amount_usd == from_ticks(WORST)
    assert reservation.budget_ids == [budget.id]
    assert reservation.remaining_usd == Decimal(1) - from_ticks(WORST)
    assert settlement.cost_usd == from_ticks(REAL_TICKS)
    assert settlement.remaining_usd == Decimal(1) - from_ticks(REAL_TICKS)
    status = await _status(harness, budget)
    assert (status.spent_usd, status.reserved_usd) == (from_ticks(REAL_TICKS), 0)
    # Other users are not budgeted: nothing is reserved, the cost is still computed.
    other, settled = await _spend(harness, user="bob")
    assert other is None
    assert settled.cost_usd == from_ticks(REAL_TICKS)


async def test_a_refusal_names_the_budget_and_holds_nothing(harness: BudgetHarness) -> None:
    roomy = await harness.create("global", None, "monthly", "100")
    tight = await harness.create("user", "alice", "total", str(from_ticks(WORST * 2 - 1)))
    await harness.service.reserve(harness.call(user="alice"), ROUTE, _body(), "chat.completions")
    with pytest.raises(BudgetExceeded) as refused:
        await harness.service.reserve(
            harness.call(user="alice"), ROUTE, _body(), "chat.completions"
        )
    assert tight.id in refused.value.message
    assert "'user alice, total'" in refused.value.message
    assert "does not reset" in refused.value.message
    assert (await _status(harness, roomy)).reserved_usd == from_ticks(WORST)


async def test_the_daily_window_rolls_over_at_midnight_utc(harness: BudgetHarness) -> None:
    budget = await harness.create("user", "alice", "daily", str(from_ticks(WORST)))
    late = datetime(2026, 11, 21, 23, 59, 59, 999000, tzinfo=UTC)
    await _spend(harness, at=late)
    with pytest.raises(BudgetExceeded) as refused:
        await _spend(harness, at=late)
    assert "resets at 2026-11-22T00:00:00Z" in refused.value.message
    _, settlement = await _spend(harness, at=datetime(2026, 11, 22, tzinfo=UTC))
    assert settlement.remaining_usd == from_ticks(WORST - REAL_TICKS)
    harness.clock.now = datetime(2026, 11, 21, 23, 0, tzinfo=UTC)
    assert (await _status(harness, budget)).spent_usd == from_ticks(REAL_TICKS)
    harness.clock.now = datetime(2026, 11, 22, 0, 0, 1, tzinfo=UTC)
    status = await _status(harness, budget)
    assert (status.window.key, status.spent_usd) == ("2026-11-22", from_ticks(REAL_TICKS))


async def test_a_missing_counter_is_rebuilt_from_the_log(harness: BudgetHarness) -> None:
    today = harness.clock.now
    yesterday = datetime(2026, 11, 20, 12, tzinfo=UTC)
    await harness.log("0.001", at=today, user="alice", tags={"feature": "search"})
    await harness.log("0.0020000001", at=today, user="alice")
    await harness.log("0.5", at=yesterday, user="alice", tags={"feature": "search"})
    await harness.log("0.7", at=today, user="bob", tags={"feature": "search"})
    alice = await harness.create("user", "alice", "daily", "10")
    search = await harness.create("tag", "feature=search", "daily", "10")
    everyone = await harness.create("global", None, "total", "10")
    statuses = await harness.service.status([alice, search, everyone])
    assert [s.spent_usd for s in statuses] == [
        Decimal("0.0030000001"),
        Decimal("0.701"),
        Decimal("1.2030000001"),
    ]
    assert harness.flushes  # this replica's buffered rows were written before reading the log
    # A request settles, and its row reaches the log as the proxy would write it.
    _, settlement = await _spend(harness)
    await harness.log(str(settlement.cost_usd), at=today, user="alice")
    await harness.lose_store()
    rebuilt = await _status(harness, alice)
    assert rebuilt.spent_usd == Decimal("0.0030000001") + from_ticks(REAL_TICKS)


async def test_an_abandoned_hold_expires(harness: BudgetHarness) -> None:
    budget = await harness.create("user", "alice", "daily", "1")
    await harness.service.reserve(harness.call(user="alice"), ROUTE, _body(), "chat.completions")
    assert (await _status(harness, budget)).reserved_usd == from_ticks(WORST)
    harness.clock.advance(seconds=61)  # the harness's reservation TTL is 60 s
    assert (await _status(harness, budget)).reserved_usd == 0


async def test_the_soft_limit_alert_fires_once_per_window(harness: BudgetHarness) -> None:
    limit = from_ticks(REAL_TICKS * 10)
    budget = await harness.create("user", "alice", "daily", str(limit), soft_limit_pct=20)
    alerts = harness.service.alerts
    for _ in range(2):
        _, settlement = await _spend(harness)
        await harness.log(str(settlement.cost_usd), at=harness.clock.now, user="alice")
    await harness.service.drain()
    [alert] = await alerts.list(limit=10, budget_id=budget.id)
    assert (alert.window, alert.spent_usd) == ("2026-11-21", from_ticks(REAL_TICKS * 2))
    await _spend(harness)
    # After a lost store the rebuilt counter may flag the alert again: the database dedupes it.
    await harness.lose_store()
    await _spend(harness)
    await harness.service.drain()
    assert len(await alerts.list(limit=10, budget_id=budget.id)) == 1
    tomorrow = datetime(2026, 11, 22, 1, tzinfo=UTC)
    await _spend(harness, at=tomorrow)
    await _spend(harness, at=tomorrow)
    await harness.service.drain()
    windows = [a.window for a in await alerts.list(limit=10, budget_id=budget.id)]
    assert windows == ["2026-11-22", "2026-11-21"]
    assert harness.service.metrics.alerts.labels("user", "daily")._value.get() == 2


def _figures(status: Any) -> tuple[Any, ...]:
    return (status.window.key, status.spent_usd, status.reserved_usd, status.remaining_usd)


async def _scenario(h: BudgetHarness) -> list[Any]:
    """Reserve, settle, refuse, expire, roll over: every answer the service gives."""
    answers: list[Any] = []
    budget = await h.create("user", "alice", "daily", str(from_ticks(WORST * 3 + REAL_TICKS)))
    await h.log("0.0000123", at=h.clock.now, user="alice")
    abandoned = await h.service.reserve(h.call(user="alice"), ROUTE, _body(), "chat.completions")
    answers.append(abandoned.remaining_usd if abandoned else None)
    for _ in range(4):
        try:
            reservation, settlement = await _spend(h)
            answers.append((reservation.remaining_usd, settlement))
        except BudgetExceeded as exc:
            answers.append(exc.message.replace(budget.id, "ID"))
    answers.append(_figures(await _status(h, budget)))
    h.clock.advance(seconds=61)
    answers.append(_figures(await _status(h, budget)))
    for at in (None, datetime(2026, 11, 22, tzinfo=UTC)):
        reservation, settlement = await _spend(h, at=at)
        answers.append((reservation.remaining_usd, settlement))
    return [repr(a).replace(budget.id, "ID") for a in answers]


async def test_in_process_and_redis_give_the_same_answers(
    sqlite_url: str, redis_url: str, tmp_path: Any
) -> None:
    async def local(clock: Clock) -> LocalLedger:
        return LocalLedger(clock)

    async def shared(clock: Clock) -> RedisLedger:
        return RedisLedger(connection)

    connection = RespConnection(redis_url)
    await connection.call("FLUSHDB")
    try:
        async with build_harness(sqlite_url, local) as h:
            in_process = await _scenario(h)
        second = f"sqlite+aiosqlite:///{tmp_path / 'second.db'}"
        engine = create_engine(second)
        await upgrade(engine)
        await engine.dispose()
        async with build_harness(second, shared) as h:
            with_redis = await _scenario(h)
    finally:
        await connection.close()
    assert in_process == with_redis
    assert sum("left of" in answer for answer in in_process) == 1  # the fourth spend


async def _dead_redis(clock: Clock) -> RedisLedger:
    return RedisLedger(RespConnection(f"redis://127.0.0.1:{free_port()}/0"), timeout=1)


async def test_budgets_fail_closed_when_the_store_is_down(sqlite_url: str) -> None:
    async with build_harness(sqlite_url, _dead_redis) as h:
        await h.create("user", "alice", "daily", "1")
        with pytest.raises(BudgetStoreUnavailable):
            await h.service.reserve(h.call(user="alice"), ROUTE, _body(), "chat.completions")
        assert h.service.metrics.checks.labels("unavailable")._value.get() == 1
        # Unbudgeted calls do not need the store.
        assert (
            await h.service.reserve(h.call(user="bob"), ROUTE, _body(), "chat.completions") is None
        )


async def test_fail_open_serves_counts_and_queues_the_settlement(sqlite_url: str) -> None:
    async with build_harness(sqlite_url, _dead_redis, fail_open=True) as h:
        await h.create("user", "alice", "daily", "1")
        reservation = await h.service.reserve(
            h.call(user="alice"), ROUTE, _body(), "chat.completions"
        )
        assert reservation is not None
        assert reservation.remaining_usd is None
        assert h.service.metrics.fail_open._value.get() == 1
        settlement = await h.service.settle(reservation, ROUTE, REAL)
        assert settlement.cost_usd == from_ticks(REAL_TICKS)
        assert settlement.remaining_usd is None
        await h.service.drain()
        assert len(h.service.retries) == 1


async def test_a_store_lost_mid_flight_keeps_this_gateways_holds(harness: BudgetHarness) -> None:
    budget = await harness.create("user", "alice", "daily", "1")
    in_flight = await harness.service.reserve(
        harness.call(user="alice"), ROUTE, _body(), "chat.completions"
    )
    await harness.lose_store()
    status = await _status(harness, budget)
    assert (status.spent_usd, status.reserved_usd) == (0, from_ticks(WORST))
    settlement = await harness.service.settle(in_flight, ROUTE, REAL)
    assert settlement.remaining_usd == Decimal(1) - from_ticks(REAL_TICKS)
