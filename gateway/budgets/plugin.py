"""Budgets as a capability: admin routes, the price table, the ledger and the proxy's budget
stage. With SLUICE_REDIS_URL the ledger is shared in Redis; without it, it lives in-process."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
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
from gateway.budgets.registry import BudgetRegistry
from gateway.budgets.resp import RespConnection
from gateway.budgets.service import BudgetService
from gateway.budgets.spend import SpendQuery
from gateway.runtime import Runtime
from gateway.upstream.routing import ConfigFileError

__all__ = ["BudgetsPlugin"]

log = logging.getLogger("sluice.budgets")


def build_budget_service(runtime: Runtime) -> BudgetService:
    """The budget service of `runtime`, not yet loaded or started."""
    settings = runtime.settings
    configured, problems = prices_from_config(runtime.config)
    if problems:
        raise ConfigFileError(settings.server.config_file or "SLUICE_CONFIG", problems)
    metrics = BudgetMetrics(runtime.metrics.registry)
    ledger: BudgetLedger
    if settings.redis.url is not None:
        connection = RespConnection(settings.redis.url)
        ledger = RedisLedger(connection, timeout=settings.budgets.store_timeout)
    else:
        ledger = LocalLedger()
    return BudgetService(
        registry=BudgetRegistry(runtime.sessions, runtime.changes),
        pricing=PricingService(
            runtime.sessions,
            runtime.changes,
            configured=configured,
            use_fallback=settings.budgets.unpriced_models == "fallback",
        ),
        ledger=ledger,
        spend=SpendQuery(runtime.sessions),
        alerts=AlertSink(runtime.engine, runtime.sessions, metrics),
        metrics=metrics,
        settings=settings.budgets,
        flush_log=runtime.log_buffer.flush,
    )


class BudgetsPlugin(InitPluginProtocol):
    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        runtime: Runtime = app.state.runtime
        service = build_budget_service(runtime)
        await service.pricing.load()
        await service.registry.load()
        settings = runtime.settings
        if settings.budgets.reservation_ttl <= settings.upstream.total_timeout:
            log.warning(
                "SLUICE_BUDGET_RESERVATION_TTL (%gs) is not above SLUICE_UPSTREAM_TOTAL_TIMEOUT "
                "(%gs): holds of the longest requests may expire before they settle",
                settings.budgets.reservation_ttl,
                settings.upstream.total_timeout,
            )
        runtime.services["budgets"] = service
        runtime.services["pricing"] = service.pricing
        runtime.proxy.stages.budgets = service
        service.start()
        try:
            yield
        finally:
            # Streams still relaying settle through this service: let them finish first.
            await runtime.proxy.drain()
            runtime.proxy.stages.budgets = None
            await service.close()
            await service.registry.close()
            await service.pricing.close()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.route_handlers.extend([BudgetController, PricingController])
        return app_config
