"""Building the testing services of one process from its core, and taking them down.

Every process runs the engine and the supervisor (a run continues wherever a live process
is); the scheduler runs in `sluice worker`, in the embedded mode (no Redis) in the gateway
itself, or wherever SLUICE_SCHEDULER=true.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from gateway.budgets.service import BudgetService
from gateway.evaluations.services import EvaluationServices
from gateway.prompts.cache import PromptCache
from gateway.proxy.service import ProxyService
from gateway.runtime import Core
from gateway.settings import TestRunSettings
from gateway.testsuites.alerts import AlertStore
from gateway.testsuites.cases import TestCaseService
from gateway.testsuites.degradation import DegradationCheck
from gateway.testsuites.engine import RunEngine
from gateway.testsuites.planning import RunPlanner
from gateway.testsuites.runs import TestRunService
from gateway.testsuites.scheduler import Scheduler
from gateway.testsuites.schedules import ScheduleService
from gateway.testsuites.supervisor import RunSupervisor

__all__ = ["TestingServices", "testing_services"]


@dataclass(slots=True)
class TestingServices:
    settings: TestRunSettings
    cases: TestCaseService
    runs: TestRunService
    engine: RunEngine
    supervisor: RunSupervisor
    schedules: ScheduleService
    scheduler: Scheduler
    alerts: AlertStore
    loop: asyncio.AbstractEventLoop | None = None
    """The event loop the services run on (tests fire schedules on it from another thread)."""

    def run_scheduler(self) -> None:
        """Fire due schedules from this process (idempotent)."""
        self.scheduler.start()


def _build(
    core: Core,
    *,
    proxy: ProxyService,
    cache: PromptCache,
    evaluations: EvaluationServices,
    budgets: BudgetService | None,
) -> TestingServices:
    settings = core.settings.test_runs
    planner = RunPlanner(
        sessions=core.sessions,
        cache=cache,
        router=core.router,
        budgets=budgets,
        default_max_tokens=core.settings.budgets.default_max_tokens,
    )
    engine = RunEngine(
        sessions=core.sessions,
        proxy=proxy,
        log_buffer=core.log_buffer,
        processor=evaluations.processor,
        settings=settings,
        release=planner.release,
    )
    runs = TestRunService(core.sessions, planner, engine)
    alerts = AlertStore(core.sessions)
    schedules = ScheduleService(core.sessions, runs, default_drop=settings.max_score_drop)
    engine.on_finished.append(DegradationCheck(core.sessions, alerts).after_run)
    return TestingServices(
        settings=settings,
        cases=TestCaseService(core.sessions, evaluations.configs),
        runs=runs,
        engine=engine,
        supervisor=RunSupervisor(core.sessions, engine, settings),
        schedules=schedules,
        scheduler=Scheduler(schedules, interval=settings.scheduler_interval),
        alerts=alerts,
    )


@asynccontextmanager
async def testing_services(
    core: Core,
    *,
    proxy: ProxyService,
    cache: PromptCache,
    evaluations: EvaluationServices,
    budgets: BudgetService | None,
) -> AsyncIterator[TestingServices]:
    services = _build(core, proxy=proxy, cache=cache, evaluations=evaluations, budgets=budgets)
    services.loop = asyncio.get_running_loop()
    services.supervisor.start()
    wanted = services.settings.scheduler
    if wanted or (wanted is None and core.redis is None):
        services.run_scheduler()
    try:
        yield services
    finally:
        await services.scheduler.close()
        await services.supervisor.close()
        with contextlib.suppress(Exception):
            await services.engine.close()
