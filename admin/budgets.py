"""Admin: budgets, with what each has spent, holds and has left in its current window."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from admin.auth import require_admin
from admin.pagination import Page, decode_cursor, make_page, page_limit
from gateway.budgets.alerts import AlertView
from gateway.budgets.registry import BudgetChanges, NewBudget
from gateway.budgets.service import BudgetService, BudgetStatus
from gateway.input_bounds import check_identifier

__all__ = ["BudgetController"]

Percent = Annotated[float, msgspec.Meta(gt=0, le=100)]


class CreateBudget(msgspec.Struct, forbid_unknown_fields=True):
    scope: Literal["global", "key", "prompt", "user", "tag"]
    period: Literal["daily", "monthly", "total"]
    limit_usd: Decimal
    scope_value: Annotated[str, msgspec.Meta(min_length=1, max_length=300)] | None = None
    soft_limit_pct: Percent | None = None


class PatchBudget(msgspec.Struct, forbid_unknown_fields=True):
    limit_usd: Decimal | msgspec.UnsetType = msgspec.UNSET
    soft_limit_pct: Percent | msgspec.UnsetType | None = msgspec.UNSET
    """null removes the soft limit."""


class BudgetView(msgspec.Struct):
    id: str
    scope: str
    scope_value: str | None
    period: str
    limit_usd: float
    soft_limit_pct: float | None
    soft_limit_usd: float | None
    window: str
    """The current window: "2026-11-21", "2026-11" or "total"."""
    window_start: datetime | None
    resets_at: datetime | None
    spent_usd: float
    reserved_usd: float
    remaining_usd: float
    soft_limit_reached: bool
    created_at: datetime
    updated_at: datetime


class AlertItem(msgspec.Struct):
    id: str
    budget_id: str
    window: str
    window_start: datetime | None
    fired_at: datetime
    spent_usd: float
    soft_limit_usd: float
    limit_usd: float


def _view(status: BudgetStatus) -> BudgetView:
    budget, window = status.budget, status.window
    soft = None
    if budget.soft_ticks is not None:
        soft = float(budget.limit_usd * Decimal(str(budget.soft_limit_pct)) / 100)
    return BudgetView(
        id=budget.id,
        scope=budget.scope.value,
        scope_value=budget.scope_value,
        period=budget.period.value,
        limit_usd=float(budget.limit_usd),
        soft_limit_pct=budget.soft_limit_pct,
        soft_limit_usd=soft,
        window=window.key,
        window_start=window.start,
        resets_at=window.end,
        spent_usd=float(status.spent_usd),
        reserved_usd=float(status.reserved_usd),
        remaining_usd=float(status.remaining_usd),
        soft_limit_reached=soft is not None and float(status.spent_usd) >= soft,
        created_at=budget.created_at,
        updated_at=budget.updated_at,
    )


def _alert(view: AlertView) -> AlertItem:
    return AlertItem(
        id=view.id,
        budget_id=view.budget_id,
        window=view.window,
        window_start=view.window_start,
        fired_at=view.fired_at,
        spent_usd=float(view.spent_usd),
        soft_limit_usd=float(view.soft_limit_usd),
        limit_usd=float(view.limit_usd),
    )


class BudgetController(Controller):
    path = "/admin/budgets"
    tags = ["admin: budgets"]
    guards = [require_admin]

    @post("/", summary="Create a budget")
    async def create(
        self, data: JSONBody[CreateBudget], budget_service: NamedDependency[BudgetService]
    ) -> BudgetView:
        if data.scope_value is not None:
            # It is matched against users and tags and logged with alerts: one line, no controls.
            check_identifier("scope_value", data.scope_value)
        spec = NewBudget(
            data.scope, data.scope_value, data.period, data.limit_usd, data.soft_limit_pct
        )
        record = await budget_service.registry.create(spec)
        [status] = await budget_service.status([record])
        return _view(status)

    @get("/", summary="List budgets with their current spend, newest first")
    async def list_budgets(
        self,
        budget_service: NamedDependency[BudgetService],
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
        scope_filter: Annotated[
            str | None, QueryParameter(name="scope", description="only budgets of this scope")
        ] = None,
    ) -> Page[BudgetView]:
        size = page_limit(limit)
        records = await budget_service.registry.list(
            limit=size + 1, after=decode_cursor(cursor), scope=scope_filter
        )
        statuses = await budget_service.status(records[:size])
        return make_page([_view(s) for s in statuses] + records[size:], size)

    @get("/{budget_id:str}", summary="One budget: spent, reserved and remaining right now")
    async def get_budget(
        self, budget_id: FromPath[str], budget_service: NamedDependency[BudgetService]
    ) -> BudgetView:
        record = await budget_service.registry.get(budget_id)
        [status] = await budget_service.status([record])
        return _view(status)

    @patch("/{budget_id:str}", summary="Change a budget's limit or soft limit")
    async def update(
        self,
        budget_id: FromPath[str],
        data: JSONBody[PatchBudget],
        budget_service: NamedDependency[BudgetService],
    ) -> BudgetView:
        changes = BudgetChanges(
            limit_usd=None if isinstance(data.limit_usd, msgspec.UnsetType) else data.limit_usd,
            soft_limit_pct=data.soft_limit_pct,
        )
        record = await budget_service.registry.update(budget_id, changes)
        [status] = await budget_service.status([record])
        return _view(status)

    @delete("/{budget_id:str}", status_code=204, summary="Delete a budget")
    async def delete_budget(
        self, budget_id: FromPath[str], budget_service: NamedDependency[BudgetService]
    ) -> None:
        record = await budget_service.registry.delete(budget_id)
        await budget_service.forget(record)

    @get("/{budget_id:str}/alerts", summary="A budget's soft-limit alerts, newest first")
    async def list_alerts(
        self,
        budget_id: FromPath[str],
        budget_service: NamedDependency[BudgetService],
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Page[AlertItem]:
        size = page_limit(limit)
        await budget_service.registry.get(budget_id)
        alerts = await budget_service.alerts.list(
            limit=size + 1, before=decode_cursor(cursor), budget_id=budget_id
        )
        return make_page([_alert(a) for a in alerts], size)
