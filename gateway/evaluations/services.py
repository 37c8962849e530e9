"""Building the evaluation services of one process from its core, and taking them down.

With Redis the gateway only evaluates inline and enqueues; `sluice worker` processes run the
queue and the sweep. Without Redis (the embedded mode) the gateway runs an in-process worker
and the sweep itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from evaluators import EvaluatorRegistry, builtin_registry
from gateway.dependencies import Started
from gateway.errors import SluiceError
from gateway.evaluations.configs import EvaluatorConfigService
from gateway.evaluations.judge import GatewayJudgeClient
from gateway.evaluations.metrics import EvaluationMetrics
from gateway.evaluations.observer import InlineEvaluations
from gateway.evaluations.plans import PlanCache, VersionCatalog
from gateway.evaluations.processor import EvaluationProcessor
from gateway.evaluations.query import EvaluationQuery
from gateway.evaluations.queue import EvaluationQueue, InProcessQueue
from gateway.evaluations.redis_queue import RedisStreamQueue
from gateway.evaluations.store import EvaluationStore
from gateway.evaluations.sweep import Sweeper
from gateway.evaluations.worker import EvaluationWorker, default_consumer_name
from gateway.proxy.service import ProxyService
from gateway.runtime import Core
from gateway.settings import EvaluationSettings
from gateway.tokens.counting import count_text
from gateway.upstream.routing import ModelRouter

__all__ = ["EvaluationServices", "evaluation_services"]

log = logging.getLogger("sluice.evaluations")

DEPTH_REFRESH_S = 2.0


@dataclass(slots=True)
class EvaluationServices:
    settings: EvaluationSettings
    registry: EvaluatorRegistry
    configs: EvaluatorConfigService
    store: EvaluationStore
    query: EvaluationQuery
    queue: EvaluationQueue
    plans: PlanCache
    versions: VersionCatalog
    processor: EvaluationProcessor
    inline: InlineEvaluations
    sweeper: Sweeper
    metrics: EvaluationMetrics
    embedded: bool
    """No Redis: this process runs the queue and the sweep itself."""
    embedded_worker: tuple[EvaluationWorker, asyncio.Task[None]] | None = None

    def run_embedded_worker(self) -> None:
        """In the embedded mode, start this process's own worker (once the app is up)."""
        if self.embedded and self.embedded_worker is None:
            worker = self.worker(name="embedded")
            self.embedded_worker = (worker, asyncio.create_task(worker.run()))

    def worker(self, name: str | None = None) -> EvaluationWorker:
        return EvaluationWorker(
            self.queue,
            self.processor,
            self.metrics,
            name=name or default_consumer_name(),
            concurrency=self.settings.concurrency,
            retry_after=self.settings.claim_after,
            sweeper=self.sweeper,
            sweep_interval=self.settings.sweep_interval,
        )


def _routes(router: ModelRouter, model: str) -> bool:
    try:
        router.resolve(model)
    except SluiceError:
        return False
    return True


def _build(core: Core, judge_proxy: Started[ProxyService]) -> EvaluationServices:
    settings = core.settings.evaluations
    metrics = EvaluationMetrics(core.metrics.registry)
    judge = GatewayJudgeClient(judge_proxy)
    registry = builtin_registry(judge_client=judge, token_counter=count_text)
    dead = metrics.jobs.labels("dead_lettered").inc
    queue: EvaluationQueue
    if core.redis is not None:
        queue = RedisStreamQueue(
            core.redis,
            max_failures=settings.max_failures,
            retry_after=settings.claim_after,
            on_dead_lettered=dead,
        )
    else:
        queue = InProcessQueue(
            max_failures=settings.max_failures,
            retry_after=settings.claim_after,
            on_dead_lettered=dead,
        )
    plans = PlanCache(core.sessions, core.changes, registry)
    versions = VersionCatalog(core.sessions)
    store = EvaluationStore(core.engine, core.sessions)
    processor = EvaluationProcessor(
        store=store,
        plans=plans,
        versions=versions,
        metrics=metrics,
        attempts=settings.attempts,
        timeout=settings.timeout,
    )
    return EvaluationServices(
        settings=settings,
        registry=registry,
        configs=EvaluatorConfigService(
            core.sessions,
            core.changes,
            registry,
            model_exists=lambda model: _routes(core.router, model),
        ),
        store=store,
        query=EvaluationQuery(core.sessions),
        queue=queue,
        plans=plans,
        versions=versions,
        processor=processor,
        inline=InlineEvaluations(processor, queue, plans, metrics),
        sweeper=Sweeper(
            core.sessions,
            plans,
            versions,
            queue,
            metrics,
            grace=settings.sweep_grace,
            lookback=settings.sweep_lookback,
        ),
        metrics=metrics,
        embedded=core.redis is None,
    )


async def _refresh_depth(services: EvaluationServices) -> None:
    while True:
        try:
            services.metrics.set_depth(await services.queue.depth())
        except Exception as exc:
            log.debug("queue depth unavailable: %s", type(exc).__name__)
        await asyncio.sleep(DEPTH_REFRESH_S)


@asynccontextmanager
async def evaluation_services(
    core: Core, judge_proxy: Started[ProxyService]
) -> AsyncIterator[EvaluationServices]:
    """The services, listening to the request log. The embedded worker is not started here
    (`run_embedded_worker`): its judge calls go through the proxy, which is built after."""
    services = _build(core, judge_proxy)
    try:
        await services.queue.start()
    except Exception as exc:  # Redis down at start: the queue recreates its group when back
        log.warning("evaluation queue not ready at start: %s", type(exc).__name__)
    services.inline.start()
    core.log_buffer.add_listener(services.inline.on_logged)
    depth = asyncio.create_task(_refresh_depth(services), name="sluice-evaluation-depth")
    try:
        yield services
    finally:
        await services.inline.close()
        if services.embedded_worker is not None:
            worker, running = services.embedded_worker
            worker.stop()  # it finishes the jobs it is running; the sweep finds the rest
            await running
        depth.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await depth
        await services.queue.close()
