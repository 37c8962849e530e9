"""Soft-limit alerts: once per budget and window, logged, counted in /metrics and stored.

The ledger flags the first settlement that takes a window's spend past the soft limit; the
`budget_alerts` row (unique per budget and window) makes "once" hold across replicas and across
counters rebuilt after a Redis restart. Alerts are written behind the response.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.budgets.metrics import BudgetMetrics
from gateway.budgets.money import from_ticks
from gateway.budgets.scopes import BudgetRecord
from gateway.budgets.windows import Window
from gateway.db.base import utcnow
from gateway.db.models import BudgetAlert
from gateway.ids import new_id

__all__ = ["AlertSink", "AlertView"]

log = logging.getLogger("sluice.budgets")


@dataclass(frozen=True, slots=True)
class AlertView:
    id: str
    budget_id: str
    window: str
    window_start: datetime | None
    fired_at: datetime
    spent_usd: Decimal
    soft_limit_usd: Decimal
    limit_usd: Decimal


class AlertSink:
    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        metrics: BudgetMetrics,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._metrics = metrics
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._insert = insert
        self._tasks: set[asyncio.Task[None]] = set()

    def fire(self, budget: BudgetRecord, window: Window, spent_ticks: int) -> None:
        task = asyncio.get_running_loop().create_task(self._record(budget, window, spent_ticks))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, budget: BudgetRecord, window: Window, spent_ticks: int) -> None:
        soft = budget.soft_ticks or 0
        statement = (
            self._insert(BudgetAlert)
            .values(
                id=new_id(),
                budget_id=budget.id,
                window_key=window.key,
                window_start=window.start,
                fired_at=utcnow(),
                spent_usd=from_ticks(spent_ticks),
                soft_limit_usd=from_ticks(soft),
                limit_usd=budget.limit_usd,
            )
            .on_conflict_do_nothing(index_elements=["budget_id", "window_key"])
            .returning(BudgetAlert.id)
        )
        try:
            async with self._engine.begin() as connection:
                stored = (await connection.execute(statement)).scalar()
        except Exception as exc:
            # The budget may have been deleted meanwhile (foreign key), or the database is down:
            # the alert is still logged and counted, once by this replica.
            log.warning("could not store the soft-limit alert of budget %s: %s", budget.id, exc)
            inserted = True
        else:
            inserted = stored is not None
        if not inserted:
            return
        self._metrics.alerts.labels(budget.scope.value, budget.period.value).inc()
        log.warning(
            "budget %s (%s) passed its soft limit of %s%% for %s: spent $%s of $%s",
            budget.id,
            budget.label,
            budget.soft_limit_pct,
            window.key,
            from_ticks(spent_ticks).normalize(),
            budget.limit_usd.normalize(),
        )

    async def list(
        self, *, limit: int, before: str | None = None, budget_id: str | None = None
    ) -> list[AlertView]:
        """Newest first (ids are time-ordered), for the admin API."""
        query = select(BudgetAlert).order_by(BudgetAlert.id.desc()).limit(limit)
        if before:
            query = query.where(BudgetAlert.id < before)
        if budget_id:
            query = query.where(BudgetAlert.budget_id == budget_id)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [
            AlertView(
                row.id,
                row.budget_id,
                row.window_key,
                row.window_start,
                row.fired_at,
                row.spent_usd,
                row.soft_limit_usd,
                row.limit_usd,
            )
            for row in rows
        ]

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
