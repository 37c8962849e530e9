"""The composition root: plugins start in the order create_app() lists them, and one whose
dependency has not started fails the startup with an error naming what to add."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from litestar import Litestar
from litestar.plugins import InitPluginProtocol

from gateway.budgets.plugin import BudgetsPlugin
from gateway.core import CorePlugin
from gateway.dependencies import MissingDependency
from gateway.evaluations.plugin import EvaluationsPlugin
from gateway.prompts.plugin import PromptsPlugin
from gateway.proxy.plugin import ProxyPlugin
from gateway.settings import Settings
from gateway.testsuites.plugin import TestingPlugin
from sluice_devtools.fake_upstream import FakeUpstreamThread
from tests.conftest import make_settings

Wiring = Callable[[Settings], list[InitPluginProtocol]]


def _testing_without_evaluations(settings: Settings) -> list[InitPluginProtocol]:
    core = CorePlugin(settings)
    prompts = PromptsPlugin(core)
    evaluations = EvaluationsPlugin(core)  # constructed, never listed
    proxy = ProxyPlugin(core, prompts=prompts, budgets=None, evaluations=None)
    testing = TestingPlugin(
        core, proxy=proxy, prompts=prompts, evaluations=evaluations, budgets=None
    )
    return [core, prompts, proxy, testing]


def _budgets_listed_after_the_proxy(settings: Settings) -> list[InitPluginProtocol]:
    core = CorePlugin(settings)
    budgets = BudgetsPlugin(core)
    proxy = ProxyPlugin(core, prompts=None, budgets=budgets, evaluations=None)
    return [core, proxy, budgets]


def _judge_without_a_proxy(settings: Settings) -> list[InitPluginProtocol]:
    core = CorePlugin(settings)
    evaluations = EvaluationsPlugin(core)
    proxy = ProxyPlugin(core, prompts=None, budgets=None, evaluations=None)
    return [core, evaluations, proxy]


@pytest.mark.parametrize(
    ("wiring", "message"),
    [
        (
            _testing_without_evaluations,
            "TestingPlugin needs the evaluation services, but EvaluationsPlugin has not "
            "provided it: list EvaluationsPlugin before TestingPlugin",
        ),
        (
            _budgets_listed_after_the_proxy,
            "ProxyPlugin needs the budget service, but BudgetsPlugin has not provided it: "
            "list BudgetsPlugin before ProxyPlugin",
        ),
        (
            _judge_without_a_proxy,
            "EvaluationsPlugin needs the proxy its LLM judge calls through, but ProxyPlugin "
            "has not provided it: pass this plugin to ProxyPlugin(evaluations=...)",
        ),
    ],
    ids=["not-listed", "listed-too-late", "not-handed-over"],
)
async def test_a_missing_dependency_fails_the_startup_naming_it(
    sqlite_url: str, fake_upstream: FakeUpstreamThread, wiring: Wiring, message: str
) -> None:
    app = Litestar(plugins=wiring(make_settings(sqlite_url, fake_upstream.base_url)))
    raised: list[Exception] = []
    try:  # Litestar's lifespan may wrap the error in an exception group
        async with app.lifespan():
            pass
    except* MissingDependency as group:
        raised = list(group.exceptions)
    assert [str(error) for error in raised] == [f"{message} in create_app() (gateway/app.py)."]
