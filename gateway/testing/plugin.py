"""Test suites as a capability: admin routes, and the services built in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol

from admin.schedules import ScheduleController
from admin.test_runs import TestRunController
from admin.tests import SuiteController, TestCaseController
from gateway.runtime import Runtime
from gateway.testing.services import testing_services

__all__ = ["TestingPlugin"]


class TestingPlugin(InitPluginProtocol):
    __test__ = False

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        runtime: Runtime = app.state.runtime
        async with testing_services(runtime) as services:
            runtime.services["testing"] = services
            try:
                yield
            finally:
                runtime.services.pop("testing", None)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.route_handlers.extend(
            [SuiteController, TestCaseController, TestRunController, ScheduleController]
        )
        return app_config
