"""Analytics as a capability: the read-only admin routes and their services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

from admin.analytics import AlertController, AnalyticsController
from gateway.analytics.alerts import AlertFeed
from gateway.analytics.models import ModelAnalytics
from gateway.analytics.prompts import PromptAnalytics
from gateway.analytics.services import AnalyticsServices
from gateway.budgets.plugin import BudgetsPlugin
from gateway.core import CorePlugin
from gateway.dependencies import Started
from gateway.evaluations.plugin import EvaluationsPlugin
from gateway.testsuites.plugin import TestingPlugin

__all__ = ["AnalyticsPlugin"]

NAME = "AnalyticsPlugin"


class AnalyticsPlugin(InitPluginProtocol):
    def __init__(
        self,
        core: CorePlugin,
        *,
        testing: TestingPlugin,
        budgets: BudgetsPlugin | None,
        evaluations: EvaluationsPlugin | None,
    ) -> None:
        """The alert feed merges quality alerts (`testing`) with budget alerts and the
        evaluation queue's dead letters, when those capabilities are given."""
        self._core = core
        self._testing = testing
        self._budgets = budgets
        self._evaluations = evaluations
        self.services: Started[AnalyticsServices] = Started(NAME, "the analytics services")

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        core = self._core.core.require(NAME)
        budgets = self._budgets.service.require(NAME) if self._budgets else None
        evaluations = self._evaluations.services.require(NAME) if self._evaluations else None
        services = AnalyticsServices(
            prompts=PromptAnalytics(core.engine, core.sessions),
            models=ModelAnalytics(core.engine, core.sessions),
            alerts=AlertFeed(
                self._testing.services.require(NAME).alerts,
                budgets.alerts if budgets is not None else None,
                evaluations.queue if evaluations is not None else None,
            ),
        )
        with self.services.serving(services):
            yield

    def provide_analytics_services(self) -> AnalyticsServices:
        return self.services.value

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.route_handlers.extend([AnalyticsController, AlertController])
        app_config.dependencies["analytics_services"] = Provide(
            self.provide_analytics_services, sync_to_thread=False
        )
        return app_config
