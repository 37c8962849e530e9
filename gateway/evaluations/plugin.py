"""The evaluations plugin: admin routes, and the services built in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol

from admin.evaluations import EvaluationController, ResponseEvaluationController
from admin.evaluators import EvaluatorController, VersionEvaluatorController
from gateway.evaluations.ab_scores import AbTestScores
from gateway.evaluations.services import evaluation_services
from gateway.runtime import Runtime

__all__ = ["EvaluationsPlugin"]


class EvaluationsPlugin(InitPluginProtocol):
    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        runtime: Runtime = app.state.runtime
        async with evaluation_services(runtime) as services:
            runtime.services["evaluations"] = services
            ab_results = runtime.services.get("prompt_results")
            if ab_results is not None:  # A/B results compare variants on these scores
                ab_results.scores = AbTestScores(runtime.sessions)
            try:
                yield
            finally:
                runtime.services.pop("evaluations", None)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.route_handlers.extend(
            [
                VersionEvaluatorController,
                EvaluatorController,
                EvaluationController,
                ResponseEvaluationController,
            ]
        )
        return app_config
