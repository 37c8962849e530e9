"""The evaluations plugin: admin routes, and the services built in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

from admin.evaluations import EvaluationController, ResponseEvaluationController
from admin.evaluators import EvaluatorController, VersionEvaluatorController
from gateway.core import CorePlugin
from gateway.dependencies import Started
from gateway.evaluations.configs import EvaluatorConfigService
from gateway.evaluations.services import EvaluationServices, evaluation_services
from gateway.proxy.service import ProxyService

__all__ = ["EvaluationsPlugin"]

NAME = "EvaluationsPlugin"


class EvaluationsPlugin(InitPluginProtocol):
    def __init__(self, core: CorePlugin) -> None:
        self._core = core
        self.services: Started[EvaluationServices] = Started(NAME, "the evaluation services")
        self.judge_proxy: Started[ProxyService] = Started(
            "ProxyPlugin",
            "the proxy its LLM judge calls through",
            fix="pass this plugin to ProxyPlugin(evaluations=...)",
        )
        """Filled by the ProxyPlugin given this plugin: the proxy is built after these services,
        since it runs their observer on every call."""

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        core = self._core.core.require(NAME)
        async with evaluation_services(core, self.judge_proxy) as services:
            with self.services.serving(services):
                yield

    def start_embedded_worker(self, app: Litestar) -> None:
        """After every lifespan has run: the judge's proxy must be there before any job."""
        self.judge_proxy.require(NAME)
        self.services.require(NAME).run_embedded_worker()

    def provide_evaluation_services(self) -> EvaluationServices:
        return self.services.value

    def provide_evaluator_configs(self) -> EvaluatorConfigService:
        return self.services.value.configs

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.on_startup.append(self.start_embedded_worker)
        app_config.route_handlers.extend(
            [
                VersionEvaluatorController,
                EvaluatorController,
                EvaluationController,
                ResponseEvaluationController,
            ]
        )
        app_config.dependencies.update(
            {
                "evaluation_services": Provide(
                    self.provide_evaluation_services, sync_to_thread=False
                ),
                "evaluator_configs": Provide(self.provide_evaluator_configs, sync_to_thread=False),
            }
        )
        return app_config
