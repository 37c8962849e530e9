"""The proxy as a plugin: built once with its stages fixed, and the routes that use it.

It is listed after the plugins whose stages it runs (prompts, budgets, evaluations) and
before those that call it from inside (test runs). It also hands the proxy to the LLM judge,
which calls models through it although the evaluations that use the judge are built first
(the proxy's observer is theirs).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

from admin.keys import KeyController
from admin.requestlog import ResponseController
from gateway.budgets.plugin import BudgetsPlugin
from gateway.core import CorePlugin
from gateway.dependencies import Started
from gateway.evaluations.plugin import EvaluationsPlugin
from gateway.openai.routes import (
    RESPONSE_OBJECT_ROUTES,
    chat_completions,
    completions,
    embeddings,
    list_models,
    moderations,
    responses,
)
from gateway.prompts.plugin import PromptsPlugin
from gateway.prompts.rebuilder import RequestRebuilder
from gateway.proxy.response_objects import ResponseObjects, ResponseOwners
from gateway.proxy.service import ProxyService, Stages

__all__ = ["ProxyPlugin"]

NAME = "ProxyPlugin"


class ProxyPlugin(InitPluginProtocol):
    def __init__(
        self,
        core: CorePlugin,
        *,
        prompts: PromptsPlugin | None,
        budgets: BudgetsPlugin | None,
        evaluations: EvaluationsPlugin | None,
    ) -> None:
        """Each capability given runs its stage on every call; None leaves it out."""
        self._core = core
        self._prompts = prompts
        self._budgets = budgets
        self._evaluations = evaluations
        self.proxy: Started[ProxyService] = Started(NAME, "the proxy")
        self.response_objects: Started[ResponseObjects] = Started(NAME, "the stored responses")

    def _stages(self) -> Stages:
        prompts = self._prompts.services.require(NAME) if self._prompts else None
        budgets = self._budgets.service.require(NAME) if self._budgets else None
        evaluations = self._evaluations.services.require(NAME) if self._evaluations else None
        return Stages(
            prompts=prompts.resolver if prompts is not None else None,
            budgets=budgets,
            observers=(evaluations.inline,) if evaluations is not None else (),
        )

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        core = self._core.core.require(NAME)
        owners = ResponseOwners(core.sessions)
        stored = ResponseObjects(
            keys=core.keys, router=core.router, provider=core.provider, owners=owners
        )
        proxy = ProxyService(
            keys=core.keys,
            router=core.router,
            provider=core.provider,
            log_buffer=core.log_buffer,
            metrics=core.metrics,
            stages=self._stages(),
            response_owners=owners,
        )
        try:
            with self.proxy.serving(proxy), self.response_objects.serving(stored):
                if self._evaluations is None:
                    yield
                else:
                    with self._evaluations.judge_proxy.serving(proxy):
                        yield
        finally:
            # Streams still relaying settle and log through the stages: let them finish
            # before the plugins listed earlier shut those down.
            await proxy.drain()

    def provide_proxy(self) -> ProxyService:
        return self.proxy.value

    def provide_response_objects(self) -> ResponseObjects:
        return self.response_objects.value

    def provide_request_rebuilder(self) -> RequestRebuilder | None:
        """For the request log's admin: shows a prompt's request as it was sent."""
        return self._prompts.services.value.requests if self._prompts else None

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.route_handlers.extend(
            [
                chat_completions,
                responses,
                *RESPONSE_OBJECT_ROUTES,
                completions,
                moderations,
                embeddings,
                list_models,
                KeyController,
                ResponseController,
            ]
        )
        app_config.dependencies.update(
            {
                "proxy": Provide(self.provide_proxy, sync_to_thread=False),
                "response_objects": Provide(self.provide_response_objects, sync_to_thread=False),
                "request_rebuilder": Provide(self.provide_request_rebuilder, sync_to_thread=False),
            }
        )
        return app_config
