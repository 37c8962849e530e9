"""The prompt registry as a capability: admin routes, services and the proxy's prompt stage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol

from admin.ab_tests import AbTestController
from admin.prompts import PromptBundleController, PromptController
from gateway.prompts.abtests import AbTestService
from gateway.prompts.cache import PromptCache
from gateway.prompts.importer import PromptBundles
from gateway.prompts.rendering import RequestRebuilder
from gateway.prompts.resolver import PromptResolver
from gateway.prompts.results import ResultsReader
from gateway.prompts.service import PromptService
from gateway.runtime import Runtime

__all__ = ["PromptsPlugin"]


class PromptsPlugin(InitPluginProtocol):
    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        runtime: Runtime = app.state.runtime
        cache = PromptCache(runtime.sessions, runtime.changes)
        results = ResultsReader(runtime.sessions)
        runtime.services["prompts"] = PromptService(runtime.sessions, runtime.changes)
        runtime.services["prompt_bundles"] = PromptBundles(runtime.sessions, runtime.changes)
        runtime.services["prompt_cache"] = cache
        runtime.services["prompt_results"] = results
        runtime.services["prompt_requests"] = RequestRebuilder(runtime.sessions)
        runtime.services["ab_tests"] = AbTestService(runtime.sessions, runtime.changes, results)
        runtime.proxy.stages.prompts = PromptResolver(cache)
        try:
            yield
        finally:
            runtime.proxy.stages.prompts = None

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.route_handlers.extend(
            [PromptController, PromptBundleController, AbTestController]
        )
        return app_config
