"""The budgets themselves: stored in the database, held in memory as a `BudgetIndex`.

Every replica keeps the whole index (a budget is a few hundred bytes) and swaps in a fresh one
when a change notice arrives on the `budgets` topic; a replica that made the change reloads
before answering, so its own next request already sees it. While notices cannot travel (the
Redis subscription is down) the index is reloaded at most every second, in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from decimal import Decimal

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.budgets.money import MAX_LIMIT_USD
from gateway.budgets.scopes import BudgetIndex, BudgetRecord, Scope, parse_tag
from gateway.budgets.windows import Period
from gateway.changes import ChangeFeed
from gateway.db.base import utcnow
from gateway.db.models import ApiKey, Budget, Prompt
from gateway.errors import Conflict, InvalidRequest, NotFound
from gateway.ids import new_id
from gateway.proxy.context import CallContext

__all__ = ["TOPIC", "BudgetChanges", "BudgetRegistry", "NewBudget"]

log = logging.getLogger("sluice.budgets")

TOPIC = "budgets"
UNHEALTHY_RELOAD = 1.0


@dataclass(frozen=True, slots=True)
class NewBudget:
    scope: str
    scope_value: str | None
    period: str
    limit_usd: Decimal
    soft_limit_pct: float | None = None


@dataclass(frozen=True, slots=True)
class BudgetChanges:
    """A PATCH: only the fields given change; `soft_limit_pct=None` removes the soft limit."""

    limit_usd: Decimal | None = None
    soft_limit_pct: float | msgspec.UnsetType | None = msgspec.UNSET


def _record(row: Budget) -> BudgetRecord:
    return BudgetRecord(
        id=row.id,
        scope=Scope(row.scope),
        scope_value=row.scope_value or None,
        period=Period(row.period),
        limit_usd=Decimal(row.limit_usd),
        soft_limit_pct=row.soft_limit_pct,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _check_limit(limit: Decimal) -> None:
    if not limit.is_finite() or limit <= 0 or limit > MAX_LIMIT_USD:
        raise InvalidRequest(
            f"limit_usd must be more than 0 and at most {MAX_LIMIT_USD}.", param="limit_usd"
        )
    if limit != limit.quantize(Decimal("1e-10")):
        raise InvalidRequest("limit_usd has more than 10 decimal places.", param="limit_usd")


def _check_soft(pct: float | None) -> None:
    if pct is not None and not 0 < pct <= 100:
        raise InvalidRequest(
            "soft_limit_pct must be more than 0 and at most 100.", param="soft_limit_pct"
        )


class BudgetRegistry:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], changes: ChangeFeed) -> None:
        self._sessions = sessions
        self._changes = changes
        self.index = BudgetIndex()
        self._loaded_at = 0.0
        self._reload: asyncio.Task[None] | None = None
        self._stale = False
        changes.subscribe(TOPIC, self._on_change)

    # -- the request path ------------------------------------------------------------------

    def matching(self, call: CallContext) -> list[BudgetRecord]:
        if not self._changes.healthy and time.monotonic() - self._loaded_at > UNHEALTHY_RELOAD:
            self._schedule_reload()
        return self.index.matching(call)

    def _on_change(self, _payload: str) -> None:
        self._schedule_reload()

    def _schedule_reload(self) -> None:
        self._stale = True
        if self._reload is None or self._reload.done():
            try:
                self._reload = asyncio.get_running_loop().create_task(self._reload_soon())
            except RuntimeError:  # no loop (shutdown): the next load picks it up
                return

    async def _reload_soon(self) -> None:
        while self._stale:
            self._stale = False
            try:
                await self.load()
            except Exception as exc:
                log.warning("could not reload budgets (%s); keeping the previous set", exc)
                self._loaded_at = time.monotonic()  # retry after UNHEALTHY_RELOAD, not at once
                return

    async def load(self) -> None:
        async with self._sessions() as session:
            rows = (await session.scalars(select(Budget))).all()
        self.index = BudgetIndex.build(_record(row) for row in rows)
        self._loaded_at = time.monotonic()

    async def close(self) -> None:
        if self._reload is not None:
            self._reload.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reload

    async def _changed(self, budget_id: str) -> None:
        await self.load()
        await self._changes.publish(TOPIC, budget_id)

    # -- the admin API ----------------------------------------------------------------------

    async def _scope_value(self, session: AsyncSession, scope: Scope, value: str | None) -> str:
        if scope is Scope.GLOBAL:
            if value:
                raise InvalidRequest(
                    "A global budget has no scope_value; leave it out.", param="scope_value"
                )
            return ""
        if not value:
            raise InvalidRequest(f"A {scope} budget needs a scope_value.", param="scope_value")
        if scope is Scope.TAG:
            tag = parse_tag(value)
            if tag is None:
                raise InvalidRequest(
                    "A tag budget's scope_value is name=value, e.g. feature=search (names: "
                    "1-64 of a-z, 0-9, '_', '-', '.').",
                    param="scope_value",
                )
            return f"{tag[0]}={tag[1]}"
        if scope is Scope.KEY and await session.get(ApiKey, value) is None:
            raise InvalidRequest(f"No key with id '{value}'.", param="scope_value")
        if scope is Scope.PROMPT:
            found = await session.scalar(select(Prompt.id).where(Prompt.slug == value))
            if found is None:
                raise InvalidRequest(f"No prompt with slug '{value}'.", param="scope_value")
        return value

    async def create(self, spec: NewBudget) -> BudgetRecord:
        scope, period = Scope(spec.scope), Period(spec.period)
        _check_limit(spec.limit_usd)
        _check_soft(spec.soft_limit_pct)
        now = utcnow()
        try:
            async with self._sessions.begin() as session:
                value = await self._scope_value(session, scope, spec.scope_value)
                taken = await session.scalar(
                    select(Budget.id).where(
                        Budget.scope == scope, Budget.scope_value == value, Budget.period == period
                    )
                )
                if taken is not None:
                    raise Conflict(
                        f"Budget '{taken}' already limits this {scope} per {period}: change "
                        "its limit with PATCH instead.",
                        param="scope_value",
                    )
                row = Budget(
                    id=new_id(),
                    scope=scope.value,
                    scope_value=value,
                    period=period.value,
                    limit_usd=spec.limit_usd,
                    soft_limit_pct=spec.soft_limit_pct,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
        except IntegrityError:
            raise Conflict(
                f"A budget for this {scope} per {period} was created concurrently.",
                param="scope_value",
            ) from None
        await self._changed(row.id)
        return _record(row)

    async def get(self, budget_id: str) -> BudgetRecord:
        async with self._sessions() as session:
            row = await session.get(Budget, budget_id)
        if row is None:
            raise NotFound(f"No budget with id '{budget_id}'.", param="budget_id")
        return _record(row)

    async def list(
        self, *, limit: int, after: str | None, scope: str | None = None
    ) -> list[BudgetRecord]:
        query = select(Budget).order_by(Budget.id.desc()).limit(limit)
        if after:
            query = query.where(Budget.id < after)
        if scope:
            query = query.where(Budget.scope == scope)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [_record(row) for row in rows]

    async def update(self, budget_id: str, changes: BudgetChanges) -> BudgetRecord:
        if changes.limit_usd is not None:
            _check_limit(changes.limit_usd)
        if changes.soft_limit_pct is not msgspec.UNSET:
            _check_soft(changes.soft_limit_pct)
        async with self._sessions.begin() as session:
            row = await session.get(Budget, budget_id)
            if row is None:
                raise NotFound(f"No budget with id '{budget_id}'.", param="budget_id")
            if changes.limit_usd is not None:
                row.limit_usd = changes.limit_usd
            if changes.soft_limit_pct is not msgspec.UNSET:
                row.soft_limit_pct = changes.soft_limit_pct
            row.updated_at = utcnow()
        await self._changed(budget_id)
        return _record(row)

    async def delete(self, budget_id: str) -> BudgetRecord:
        async with self._sessions.begin() as session:
            row = await session.get(Budget, budget_id)
            if row is None:
                raise NotFound(f"No budget with id '{budget_id}'.", param="budget_id")
            record = _record(row)
            await session.delete(row)
        await self._changed(budget_id)
        return record
