"""Analytics as a capability: the read-only admin routes and their services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol

from admin.analytics import AlertController, AnalyticsController
from gateway.analytics.alerts import AlertFeed
from gateway.analytics.models import ModelAnalytics
from gateway.analytics.prompts import PromptAnalytics
from gateway.analytics.services import AnalyticsServices
from gateway.runtime import Runtime

__all__ = ["AnalyticsPlugin"]


class AnalyticsPlugin(InitPluginProtocol):
    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        runtime: Runtime = app.state.runtime
        budgets = runtime.services.get("budgets")
        evaluations = runtime.services.get("evaluations")
        runtime.services["analytics"] = AnalyticsServices(
            prompts=PromptAnalytics(runtime.engine, runtime.sessions),
            models=ModelAnalytics(runtime.engine, runtime.sessions),
            alerts=AlertFeed(
                runtime.services["testing"].alerts,
                budgets.alerts if budgets is not None else None,
                evaluations.queue if evaluations is not None else None,
            ),
        )
        try:
            yield
        finally:
            runtime.services.pop("analytics", None)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.route_handlers.extend([AnalyticsController, AlertController])
        return app_config
