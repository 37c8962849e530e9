"""The core of one gateway: the process-wide resources every capability shares, built once.

`build_core()` creates them in dependency order and disposes of them in reverse (the request
log is flushed before the database goes). The core plugin (gateway/core.py) runs it in its
lifespan; capability plugins receive the `Core` as a typed value, never by name.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.changes import ChangeFeed, LocalChangeFeed, RedisChangeFeed
from gateway.db.engine import create_engine, create_sessionmaker
from gateway.keys.service import KeyService
from gateway.metrics import GatewayMetrics
from gateway.requestlog.buffer import RequestLogBuffer, RequestLogWriter
from gateway.requestlog.deadletter import DeadLetters, default_dead_letter_file
from gateway.requestlog.maintenance import LogMaintenance
from gateway.settings import Settings
from gateway.tokens.encodings import get_encoding
from gateway.upstream.lean import LeanProvider
from gateway.upstream.provider import OpenAICompatibleProvider, Provider, create_http_session
from gateway.upstream.routing import ModelRouter, load_config_file

__all__ = ["Core", "build_core"]

ENCODINGS = ("o200k_base", "cl100k_base")


@dataclass(frozen=True, slots=True)
class Core:
    settings: Settings
    config: dict[str, Any]
    """The parsed SLUICE_CONFIG file ({} without one)."""
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis | None
    """None in the embedded mode (no SLUICE_REDIS_URL)."""
    changes: ChangeFeed
    http: aiohttp.ClientSession
    provider: Provider
    """The upstream transport every call goes out through."""
    router: ModelRouter
    metrics: GatewayMetrics
    keys: KeyService
    log_buffer: RequestLogBuffer


@asynccontextmanager
async def build_core(settings: Settings) -> AsyncIterator[Core]:
    config = load_config_file(settings.server.config_file)
    router = ModelRouter.from_config(
        settings.upstream, config, path=settings.server.config_file or "SLUICE_CONFIG"
    )
    engine = create_engine(settings.database.url)
    sessions = create_sessionmaker(engine)
    redis = Redis.from_url(settings.redis.url) if settings.redis.url else None
    changes: ChangeFeed = RedisChangeFeed(redis) if redis is not None else LocalChangeFeed()
    http = create_http_session(settings.upstream)
    metrics = GatewayMetrics()
    dead_letter_file = settings.log.dead_letter_file
    dead_letters = DeadLetters(
        engine,
        Path(dead_letter_file)
        if dead_letter_file
        else default_dead_letter_file(settings.database.url),
        on_dead_lettered=metrics.log_dead_letters.inc,
        on_lost=metrics.log_rows_dropped.inc,
    )
    log_buffer = RequestLogBuffer(
        RequestLogWriter(engine),
        dead_letters=dead_letters,
        max_rows=settings.log.buffer_max_rows,
        batch_size=settings.log.batch_size,
        flush_interval=settings.log.flush_interval,
        on_dropped=metrics.log_rows_dropped.inc,
        on_flushed=metrics.log_rows_written.inc,
    )
    lean = LeanProvider(settings.upstream) if settings.upstream.client == "lean" else None
    core = Core(
        settings=settings,
        config=config,
        engine=engine,
        sessions=sessions,
        redis=redis,
        changes=changes,
        http=http,
        provider=lean or OpenAICompatibleProvider(http, settings.upstream),
        router=router,
        metrics=metrics,
        keys=KeyService(sessions, changes),
        log_buffer=log_buffer,
    )
    # Loading a BPE file takes ~0.4 s: do it now, off the event loop, not on a first request.
    await asyncio.gather(*(asyncio.to_thread(get_encoding, name) for name in ENCODINGS))
    await changes.start()
    log_buffer.start()
    # In every process, worker or not: partitions ahead (Postgres) and retention.
    maintenance = LogMaintenance(engine, retention_days=settings.log.retention_days)
    maintenance.start()
    try:
        yield core
    finally:
        await maintenance.close()
        await log_buffer.close()
        await changes.close()
        await http.close()
        if lean is not None:
            await lean.close()
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
