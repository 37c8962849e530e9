"""`sluice worker`: run the evaluation queue (and the sweep) in a process of its own.

The worker builds the same app as `sluice serve` without serving it, so it has every
capability's services (the judge's upstream client, budgets, the request log) and none of the
HTTP. It runs until SIGTERM or SIGINT, then finishes the jobs it is running (a job cut off is
claimed by another worker after SLUICE_EVAL_CLAIM_AFTER). Its own metrics are served on
`--metrics-port` for Prometheus.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from prometheus_client import start_http_server

from gateway.app import create_app
from gateway.core import CorePlugin
from gateway.db.migrate import prepare_database
from gateway.evaluations.plugin import EvaluationsPlugin
from gateway.evaluations.worker import default_consumer_name
from gateway.settings import Settings
from gateway.testsuites.plugin import TestingPlugin

__all__ = ["run_worker"]

log = logging.getLogger("sluice.evaluations")


def run_worker(settings: Settings, *, name: str | None = None, metrics_port: int = 0) -> int:
    if settings.redis.url is None:
        print(
            "error: sluice worker needs SLUICE_REDIS_URL; without Redis the gateway runs "
            "evaluations in its own process.",
            file=sys.stderr,
        )
        return 2
    problem = asyncio.run(prepare_database(settings.database))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    asyncio.run(_run(settings, name or default_consumer_name(), metrics_port))
    return 0


async def _run(settings: Settings, name: str, metrics_port: int) -> None:
    app = create_app(settings)
    async with app.lifespan():
        services = app.plugins.get(EvaluationsPlugin).services.value
        worker = services.worker(name)
        # Test schedules fire from workers (gateway/testsuites/services.py).
        app.plugins.get(TestingPlugin).services.value.run_scheduler()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.stop)
        if metrics_port:
            start_http_server(
                metrics_port,
                addr="127.0.0.1",
                registry=app.plugins.get(CorePlugin).core.value.metrics.registry,
            )
        log.info(
            "evaluation worker %s running (concurrency %d)", name, services.settings.concurrency
        )
        await worker.run()
        log.info("evaluation worker %s stopped", name)
