"""The process-wide resources of one gateway, built in the core lifespan and shared by all.

Capability plugins (prompts, budgets, evaluations) read the runtime in their own lifespans,
add their services to it and plug their stages into the proxy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.changes import ChangeFeed
from gateway.keys.service import KeyService
from gateway.metrics import GatewayMetrics
from gateway.proxy.service import ProxyService
from gateway.requestlog.buffer import RequestLogBuffer
from gateway.settings import Settings
from gateway.upstream.provider import Provider
from gateway.upstream.routing import ModelRouter

__all__ = ["Runtime"]


@dataclass(slots=True)
class Runtime:
    settings: Settings
    config: dict[str, Any]
    """The parsed SLUICE_CONFIG file ({} without one)."""
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis | None
    changes: ChangeFeed
    http: aiohttp.ClientSession
    provider: Provider
    router: ModelRouter
    metrics: GatewayMetrics
    keys: KeyService
    log_buffer: RequestLogBuffer
    proxy: ProxyService
    services: dict[str, Any] = field(default_factory=dict)
    """Capability services by name ("prompts", "budgets", ...), for the admin API."""
