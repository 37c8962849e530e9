"""The core plugin: database, Redis, upstream client, keys, request log and the proxy.

Its lifespan creates every shared resource once, puts the `Runtime` on `app.state`, and
disposes of everything in reverse order on shutdown (the request log is flushed last).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol
from redis.asyncio import Redis

from admin.keys import KeyController
from admin.responses import ResponseController
from gateway.changes import ChangeFeed, LocalChangeFeed, RedisChangeFeed
from gateway.db.engine import create_engine, create_sessionmaker
from gateway.health import healthz, metrics, readyz
from gateway.http import EXCEPTION_HANDLERS
from gateway.keys.service import KeyService
from gateway.metrics import GatewayMetrics
from gateway.openai.routes import chat_completions, embeddings, list_models
from gateway.proxy.service import ProxyService
from gateway.requestlog.buffer import RequestLogBuffer, RequestLogWriter
from gateway.requestlog.deadletter import DeadLetters, default_dead_letter_file
from gateway.runtime import Runtime
from gateway.serving import settle_heap
from gateway.settings import Settings
from gateway.tokens.encodings import get_encoding
from gateway.upstream.lean import LeanProvider
from gateway.upstream.provider import OpenAICompatibleProvider, Provider, create_http_session
from gateway.upstream.routing import ModelRouter, load_config_file

__all__ = ["CorePlugin", "build_runtime"]

ENCODINGS = ("o200k_base", "cl100k_base")


def provide_runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


def provide_proxy(state: State) -> ProxyService:
    proxy: ProxyService = state.runtime.proxy
    return proxy


@asynccontextmanager
async def build_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    config = load_config_file(settings.server.config_file)
    router = ModelRouter.from_config(
        settings.upstream, config, path=settings.server.config_file or "SLUICE_CONFIG"
    )
    engine = create_engine(settings.database.url)
    sessions = create_sessionmaker(engine)
    redis = Redis.from_url(settings.redis.url) if settings.redis.url else None
    changes: ChangeFeed = RedisChangeFeed(redis) if redis is not None else LocalChangeFeed()
    http = create_http_session(settings.upstream)
    metrics_ = GatewayMetrics()
    keys = KeyService(sessions, changes)
    dead_letter_file = settings.log.dead_letter_file
    dead_letters = DeadLetters(
        engine,
        Path(dead_letter_file)
        if dead_letter_file
        else default_dead_letter_file(settings.database.url),
        on_dead_lettered=metrics_.log_dead_letters.inc,
        on_lost=metrics_.log_rows_dropped.inc,
    )
    log_buffer = RequestLogBuffer(
        RequestLogWriter(engine),
        max_rows=settings.log.buffer_max_rows,
        batch_size=settings.log.batch_size,
        flush_interval=settings.log.flush_interval,
        dead_letters=dead_letters,
        on_dropped=metrics_.log_rows_dropped.inc,
        on_flushed=metrics_.log_rows_written.inc,
    )
    lean = LeanProvider(settings.upstream) if settings.upstream.client == "lean" else None
    provider: Provider = lean or OpenAICompatibleProvider(http, settings.upstream)
    proxy = ProxyService(
        keys=keys, router=router, provider=provider, log_buffer=log_buffer, metrics=metrics_
    )
    runtime = Runtime(
        settings=settings,
        config=config,
        engine=engine,
        sessions=sessions,
        redis=redis,
        changes=changes,
        http=http,
        provider=provider,
        router=router,
        metrics=metrics_,
        keys=keys,
        log_buffer=log_buffer,
        proxy=proxy,
    )
    # Loading a BPE file takes ~0.4 s: do it now, off the event loop, not on a first request.
    await asyncio.gather(*(asyncio.to_thread(get_encoding, name) for name in ENCODINGS))
    await changes.start()
    log_buffer.start()
    settle_heap()
    try:
        yield runtime
    finally:
        await proxy.drain()
        await log_buffer.close()
        await changes.close()
        await http.close()
        if lean is not None:
            await lean.close()
        if redis is not None:
            await redis.aclose()
        await engine.dispose()


class CorePlugin(InitPluginProtocol):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        async with build_runtime(self.settings) as runtime:
            app.state.runtime = runtime
            yield

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.insert(0, self.lifespan)
        app_config.route_handlers.extend(
            [
                chat_completions,
                embeddings,
                list_models,
                healthz,
                readyz,
                metrics,
                KeyController,
                ResponseController,
            ]
        )
        app_config.dependencies.update(
            {
                "runtime": Provide(provide_runtime, sync_to_thread=False),
                "proxy": Provide(provide_proxy, sync_to_thread=False),
            }
        )
        handlers: dict[Any, Any] = dict(EXCEPTION_HANDLERS)
        handlers.update(app_config.exception_handlers)
        app_config.exception_handlers = handlers
        return app_config
