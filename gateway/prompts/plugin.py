"""The prompt registry as a capability: admin routes, services and the proxy's prompt stage."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin.ab_tests import AbTestController
from admin.prompts import PromptBundleController, PromptController
from gateway.core import CorePlugin
from gateway.dependencies import Started
from gateway.prompts.abtests import AbTestService
from gateway.prompts.bundle_store import PromptBundles
from gateway.prompts.cache import PromptCache
from gateway.prompts.rebuilder import RequestRebuilder
from gateway.prompts.resolver import PromptResolver
from gateway.prompts.results import ResultsReader, ScoreProvider, no_scores
from gateway.prompts.service import PromptService

__all__ = ["PromptServices", "PromptsPlugin"]

ScoreSource = Callable[[async_sessionmaker[AsyncSession]], ScoreProvider]


@dataclass(frozen=True, slots=True)
class PromptServices:
    prompts: PromptService
    bundles: PromptBundles
    cache: PromptCache
    results: ResultsReader
    requests: RequestRebuilder
    ab_tests: AbTestService
    resolver: PromptResolver
    """The proxy's prompt stage."""


class PromptsPlugin(InitPluginProtocol):
    def __init__(self, core: CorePlugin, *, scores: ScoreSource | None = None) -> None:
        """`scores` gives the A/B results the scores to compare variants on (none without)."""
        self._core = core
        self._scores = scores
        self.services: Started[PromptServices] = Started("PromptsPlugin", "the prompt registry")

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        core = self._core.core.require("PromptsPlugin")
        cache = PromptCache(core.sessions, core.changes)
        scores = self._scores(core.sessions) if self._scores is not None else no_scores
        results = ResultsReader(core.sessions, scores)
        services = PromptServices(
            prompts=PromptService(core.sessions, core.changes),
            bundles=PromptBundles(core.sessions, core.changes),
            cache=cache,
            results=results,
            requests=RequestRebuilder(core.sessions),
            ab_tests=AbTestService(core.sessions, core.changes, results),
            resolver=PromptResolver(cache),
        )
        with self.services.serving(services):
            yield

    def provide_prompt_service(self) -> PromptService:
        return self.services.value.prompts

    def provide_prompt_bundles(self) -> PromptBundles:
        return self.services.value.bundles

    def provide_ab_test_service(self) -> AbTestService:
        return self.services.value.ab_tests

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.route_handlers.extend(
            [PromptController, PromptBundleController, AbTestController]
        )
        app_config.dependencies.update(
            {
                "prompt_service": Provide(self.provide_prompt_service, sync_to_thread=False),
                "prompt_bundles": Provide(self.provide_prompt_bundles, sync_to_thread=False),
                "ab_test_service": Provide(self.provide_ab_test_service, sync_to_thread=False),
            }
        )
        return app_config
