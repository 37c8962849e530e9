"""A budget service built on real things for integration tests: a migrated database, a ledger
(the machine's Redis or in-process), the real request-log writer; and a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry

from gateway.budgets.alerts import AlertSink
from gateway.budgets.metrics import BudgetMetrics
from gateway.budgets.pricing_service import PricingService
from gateway.budgets.registry import BudgetRegistry, NewBudget
from gateway.budgets.scopes import BudgetRecord
from gateway.budgets.service import BudgetService
from gateway.budgets.spend import SpendQuery
from gateway.changes import LocalChangeFeed
from gateway.db.engine import create_engine, create_sessionmaker
from gateway.ids import new_id
from gateway.keys.service import KeyInfo
from gateway.proxy.context import CallContext
from gateway.requestlog.buffer import RequestLogWriter
from gateway.requestlog.entry import LogEntry
from gateway.settings import BudgetSettings
from gateway.upstream.routing import Route, Upstream

ROUTE = Route(Upstream("default", "http://127.0.0.1:1", None), "gpt-4o-mini")


@dataclass
class Clock:
    """A `gateway.clock.Clock` the test moves; the ledger and the service share it."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 21, 12, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class BudgetHarness:
    """A BudgetService and what it stands on; `lose_store()` simulates a Redis restart."""

    service: BudgetService
    clock: Clock
    writer: RequestLogWriter
    make_ledger: Callable[[Clock], Any]
    flushes: list[int]

    async def create(
        self, scope: str, value: str | None, period: str, limit: str, **kw: Any
    ) -> BudgetRecord:
        return await self.service.registry.create(
            NewBudget(scope, value, period, Decimal(limit), kw.get("soft_limit_pct"))
        )

    def call(
        self, *, at: datetime | None = None, key: str | None = None, **fields: Any
    ) -> CallContext:
        call = CallContext(request_id=new_id(), started=0.0, created_at=at or self.clock())
        if key is not None:
            call.key = KeyInfo(key, "k", "p", call.created_at)
        for name, value in fields.items():
            setattr(call, name, value)
        return call

    async def log(self, cost: str, *, at: datetime, **fields: Any) -> None:
        entry = LogEntry(
            id=new_id(),
            request_id=new_id(),
            created_at=at,
            endpoint="chat.completions",
            status_code=200,
            cost_usd=Decimal(cost),
            **fields,
        )
        await self.writer.write([entry.as_row()])

    async def lose_store(self) -> None:
        """Every counter, hold and marker gone, as after a Redis restart without persistence."""
        self.service.ledger = await self.make_ledger(self.clock)


def budget_settings(**changes: Any) -> BudgetSettings:
    return BudgetSettings(**{"reservation_ttl": 60.0, **changes})


@asynccontextmanager
async def build_harness(
    database_url: str, make_ledger: Callable[[Clock], Any], **settings: Any
) -> AsyncIterator[BudgetHarness]:
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    changes = LocalChangeFeed()
    metrics = BudgetMetrics(CollectorRegistry())
    clock = Clock()
    flushes: list[int] = []

    async def flush_log() -> bool:
        flushes.append(1)
        return True

    pricing = PricingService(sessions, changes, configured={}, use_fallback=False)
    await pricing.load()
    registry = BudgetRegistry(sessions, changes)
    await registry.load()
    service = BudgetService(
        registry=registry,
        pricing=pricing,
        ledger=await make_ledger(clock),
        spend=SpendQuery(sessions),
        alerts=AlertSink(engine, sessions, metrics),
        metrics=metrics,
        settings=budget_settings(**settings),
        flush_log=flush_log,
        clock=clock,
    )
    service.start()
    try:
        yield BudgetHarness(service, clock, RequestLogWriter(engine), make_ledger, flushes)
    finally:
        await service.close()
        await registry.close()
        await pricing.close()
        await engine.dispose()
