"""The core plugin: builds the `Core` (gateway/runtime.py) and serves the ops routes.

Every other plugin is constructed with this one and reads `core` once its lifespan has run;
routes receive it as the `core` dependency.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

from gateway.dependencies import Started
from gateway.health import healthz, metrics, readyz
from gateway.http import EXCEPTION_HANDLERS
from gateway.runtime import Core, build_core
from gateway.settings import Settings

__all__ = ["CorePlugin"]


class CorePlugin(InitPluginProtocol):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.core: Started[Core] = Started("CorePlugin", "the core (database, Redis, upstream)")

    def provide_core(self) -> Core:
        return self.core.value

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        async with build_core(self.settings) as core:
            with self.core.serving(core):
                yield

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.route_handlers.extend([healthz, readyz, metrics])
        app_config.dependencies["core"] = Provide(self.provide_core, sync_to_thread=False)
        handlers: dict[Any, Any] = dict(EXCEPTION_HANDLERS)
        handlers.update(app_config.exception_handlers)
        app_config.exception_handlers = handlers
        return app_config
