"""Budgets as a capability: admin routes, the price table, the ledger and the proxy's budget
stage. With SLUICE_REDIS_URL the ledger is shared in Redis; without it, it lives in-process."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

from admin.budgets import BudgetController
from admin.pricing import PricingController
from gateway.budgets.alerts import AlertSink
from gateway.budgets.ledger import BudgetLedger
from gateway.budgets.local_ledger import LocalLedger
from gateway.budgets.metrics import BudgetMetrics
from gateway.budgets.pricing import prices_from_config
from gateway.budgets.pricing_service import PricingService
from gateway.budgets.redis_ledger import RedisLedger
from gateway.budgets.redis_py_ledger import RedisPyConnection, RedisPyLedger
from gateway.budgets.registry import BudgetRegistry
from gateway.budgets.resp import RespConnection
from gateway.budgets.service import BudgetService
from gateway.budgets.spend import SpendQuery
from gateway.core import CorePlugin
from gateway.dependencies import Started
from gateway.runtime import Core
from gateway.upstream.routing import ConfigFileError

__all__ = ["BudgetsPlugin"]

log = logging.getLogger("sluice.budgets")


def build_budget_service(core: Core) -> BudgetService:
    """The budget service of `core`, not yet loaded or started."""
    settings = core.settings
    configured, problems = prices_from_config(core.config)
    if problems:
        raise ConfigFileError(settings.server.config_file or "SLUICE_CONFIG", problems)
    metrics = BudgetMetrics(core.metrics.registry)
    ledger: BudgetLedger
    timeout = settings.budgets.store_timeout
    if settings.redis.url is not None and settings.budgets.redis_client == "redis-py":
        ledger = RedisPyLedger(RedisPyConnection(settings.redis.url), timeout=timeout)
    elif settings.redis.url is not None:
        ledger = RedisLedger(RespConnection(settings.redis.url), timeout=timeout)
    else:
        ledger = LocalLedger()
    return BudgetService(
        registry=BudgetRegistry(core.sessions, core.changes),
        pricing=PricingService(
            core.sessions,
            core.changes,
            configured=configured,
            use_fallback=settings.budgets.unpriced_models == "fallback",
        ),
        ledger=ledger,
        spend=SpendQuery(core.sessions),
        alerts=AlertSink(core.engine, core.sessions, metrics),
        metrics=metrics,
        settings=settings.budgets,
        flush_log=core.log_buffer.flush,
    )


class BudgetsPlugin(InitPluginProtocol):
    def __init__(self, core: CorePlugin) -> None:
        self._core = core
        self.service: Started[BudgetService] = Started("BudgetsPlugin", "the budget service")

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        core = self._core.core.require("BudgetsPlugin")
        service = build_budget_service(core)
        await service.pricing.load()
        await service.registry.load()
        settings = core.settings
        if settings.budgets.reservation_ttl <= settings.upstream.total_timeout:
            log.warning(
                "SLUICE_BUDGET_RESERVATION_TTL (%gs) is not above SLUICE_UPSTREAM_TOTAL_TIMEOUT "
                "(%gs): holds of the longest requests may expire before they settle",
                settings.budgets.reservation_ttl,
                settings.upstream.total_timeout,
            )
        service.start()
        try:
            with self.service.serving(service):
                yield
        finally:
            await service.close()
            await service.registry.close()
            await service.pricing.close()

    def provide_budget_service(self) -> BudgetService:
        return self.service.value

    def provide_pricing_service(self) -> PricingService:
        return self.service.value.pricing

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.route_handlers.extend([BudgetController, PricingController])
        app_config.dependencies.update(
            {
                "budget_service": Provide(self.provide_budget_service, sync_to_thread=False),
                "pricing_service": Provide(self.provide_pricing_service, sync_to_thread=False),
            }
        )
        return app_config
