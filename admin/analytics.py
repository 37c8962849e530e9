"""Admin: analytics per prompt and per model over a window, and the alerts list."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from admin.auth import require_admin
from admin.pagination import page_limit
from gateway.analytics.alerts import AlertItem
from gateway.analytics.models import ModelReport
from gateway.analytics.prompts import PromptReport
from gateway.analytics.services import AnalyticsServices
from gateway.analytics.window import Window
from gateway.errors import InvalidRequest

__all__ = ["AlertController", "AnalyticsController"]

_KINDS = ("degradation", "test_run_failed", "budget_soft_limit", "evaluation_dead_lettered")


class AnalyticsController(Controller):
    path = "/admin/analytics"
    tags = ["admin: analytics"]
    guards = [require_admin]

    @get("/prompts/{slug:str}", summary="A prompt per version and per day (production, test)")
    async def prompt(
        self,
        slug: FromPath[str],
        analytics_services: NamedDependency[AnalyticsServices],
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        days: FromQuery[int | None] = None,
    ) -> PromptReport:
        return await analytics_services.prompts.report(slug, Window.of(since, until, days))

    @get("/models", summary="Models compared: the most accurate, the fastest, the best value")
    async def models(
        self,
        analytics_services: NamedDependency[AnalyticsServices],
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        days: FromQuery[int | None] = None,
    ) -> ModelReport:
        return await analytics_services.models.report(Window.of(since, until, days))


class AlertController(Controller):
    path = "/admin/alerts"
    tags = ["admin: analytics"]
    guards = [require_admin]

    @get("/", summary="Degradations, budget soft limits and dead-lettered evaluations")
    async def list_alerts(
        self,
        analytics_services: NamedDependency[AnalyticsServices],
        kind: FromQuery[str | None] = None,
        limit: FromQuery[int | None] = None,
    ) -> dict[str, list[AlertItem]]:
        if kind is not None and kind not in _KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(_KINDS)}.", param="kind")
        items = await analytics_services.alerts.list(limit=page_limit(limit), kind=kind)
        return {"data": items}
