"""Test suites as a capability: admin routes, and the services built in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

from admin.testsuite_runs import TestRunController
from admin.testsuite_schedules import ScheduleController
from admin.testsuites import SuiteController, TestCaseController
from gateway.budgets.plugin import BudgetsPlugin
from gateway.core import CorePlugin
from gateway.dependencies import Started
from gateway.evaluations.plugin import EvaluationsPlugin
from gateway.prompts.plugin import PromptsPlugin
from gateway.proxy.plugin import ProxyPlugin
from gateway.testsuites.cases import TestCaseService
from gateway.testsuites.runs import TestRunService
from gateway.testsuites.schedules import ScheduleService
from gateway.testsuites.services import TestingServices, testing_services

__all__ = ["TestingPlugin"]

NAME = "TestingPlugin"


class TestingPlugin(InitPluginProtocol):
    __test__ = False  # tests import it: not a pytest class, whatever its name says

    def __init__(
        self,
        core: CorePlugin,
        *,
        proxy: ProxyPlugin,
        prompts: PromptsPlugin,
        evaluations: EvaluationsPlugin,
        budgets: BudgetsPlugin | None,
    ) -> None:
        """Cases run through `proxy`, are scored by `evaluations`; `budgets` holds a run's
        worst-case cost up front (None: runs are not budgeted)."""
        self._core = core
        self._proxy = proxy
        self._prompts = prompts
        self._evaluations = evaluations
        self._budgets = budgets
        self.services: Started[TestingServices] = Started(NAME, "the test-run services")

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        async with testing_services(
            self._core.core.require(NAME),
            proxy=self._proxy.proxy.require(NAME),
            cache=self._prompts.services.require(NAME).cache,
            evaluations=self._evaluations.services.require(NAME),
            budgets=self._budgets.service.require(NAME) if self._budgets else None,
        ) as services:
            with self.services.serving(services):
                yield

    def provide_test_case_service(self) -> TestCaseService:
        return self.services.value.cases

    def provide_test_run_service(self) -> TestRunService:
        return self.services.value.runs

    def provide_schedule_service(self) -> ScheduleService:
        return self.services.value.schedules

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.route_handlers.extend(
            [SuiteController, TestCaseController, TestRunController, ScheduleController]
        )
        app_config.dependencies.update(
            {
                "test_case_service": Provide(self.provide_test_case_service, sync_to_thread=False),
                "test_run_service": Provide(self.provide_test_run_service, sync_to_thread=False),
                "schedule_service": Provide(self.provide_schedule_service, sync_to_thread=False),
            }
        )
        return app_config
