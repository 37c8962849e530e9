"""What the request log says a budget spent in a window: the source a counter is rebuilt from.

The sum is taken in whole ticks (each row's cost times 10^10, rounded, cast to an integer), so
it is exact on both dialects: SQLite keeps NUMERIC values as floats, whose plain SUM drifts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.budgets.money import TICKS_PER_USD
from gateway.budgets.scopes import BudgetRecord, Scope, parse_tag
from gateway.budgets.windows import Window
from gateway.db.models import RequestLog

__all__ = ["SpendQuery"]


class SpendQuery:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def spent_ticks(self, budget: BudgetRecord, window: Window) -> int:
        ticks = cast(func.round(RequestLog.cost_usd * TICKS_PER_USD), BigInteger)
        # Only positive costs count: a negative one (logged before usage was checked) is not
        # money the budget got back.
        query = select(func.coalesce(func.sum(ticks), 0)).where(RequestLog.cost_usd > 0)
        conditions: list[Any] = []
        if window.start is not None:
            conditions.append(RequestLog.created_at >= window.start)
        if window.end is not None:
            conditions.append(RequestLog.created_at < window.end)
        value = budget.scope_value
        if budget.scope is Scope.KEY:
            conditions.append(RequestLog.key_id == value)
        elif budget.scope is Scope.PROMPT:
            conditions.append(RequestLog.prompt_slug == value)
        elif budget.scope is Scope.USER:
            conditions.append(RequestLog.user == value)
        elif budget.scope is Scope.TAG:
            tag = parse_tag(value or "")
            if tag is None:  # stored budgets are validated; an unreadable one matches nothing
                return 0
            conditions.append(RequestLog.tags[tag[0]].as_string() == tag[1])
        async with self._sessions() as session:
            total = await session.scalar(query.where(*conditions))
        return max(int(total or 0), 0)
