"""Fixtures of the budget integration tests: each ledger kind, and a service on each database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gateway.budgets.ledger import BudgetLedger
from gateway.budgets.local_ledger import LocalLedger
from gateway.budgets.redis_ledger import RedisLedger
from gateway.budgets.redis_py_ledger import RedisPyConnection, RedisPyLedger
from gateway.budgets.resp import RespConnection
from gateway.clock import system_clock
from tests.integration.budgets.harness import BudgetHarness, Clock, build_harness


@pytest.fixture(params=["local", "redis", "redis-py"])
def ledger_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
async def ledger_factory(
    ledger_kind: str, request: pytest.FixtureRequest
) -> AsyncIterator[Callable[[], Any]]:
    """Makes the ledger under test: in-process, or on the machine's Redis (emptied each time)."""
    made: list[BudgetLedger] = []

    async def make(clock: Clock | None = None) -> BudgetLedger:
        ledger: BudgetLedger = LocalLedger(clock or system_clock)
        if ledger_kind == "redis":
            connection = RespConnection(request.getfixturevalue("redis_url"))
            await connection.call("FLUSHDB")
            ledger = RedisLedger(connection)
        elif ledger_kind == "redis-py":
            redis_py = RedisPyConnection(request.getfixturevalue("redis_url"))
            await redis_py.call("FLUSHDB")
            ledger = RedisPyLedger(redis_py)
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        await ledger.close()


@pytest.fixture
async def harness(
    database_url: str, ledger_factory: Callable[[], Any]
) -> AsyncIterator[BudgetHarness]:
    """A budget service on SQLite and Postgres, each with the Redis and the in-process ledger."""
    async with build_harness(database_url, ledger_factory) as built:
        yield built
