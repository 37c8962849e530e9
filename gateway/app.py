"""The app factory: Litestar with the core and one plugin per capability.

The order of the list is the startup order: each plugin is constructed with the plugins it
depends on and starts after them (and stops before them). A plugin whose dependency has not
started fails the startup with a `MissingDependency` naming it.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from gateway.analytics.plugin import AnalyticsPlugin
from gateway.budgets.plugin import BudgetsPlugin
from gateway.core import CorePlugin
from gateway.evaluations.ab_scores import AbTestScores
from gateway.evaluations.plugin import EvaluationsPlugin
from gateway.heap import settle_heap
from gateway.http import SluiceRequest, check_parameters
from gateway.prompts.plugin import PromptsPlugin
from gateway.proxy.plugin import ProxyPlugin
from gateway.settings import Settings, load_settings
from gateway.testsuites.plugin import TestingPlugin

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    core = CorePlugin(settings)
    # A/B results compare variants on their production evaluation scores.
    prompts = PromptsPlugin(core, scores=AbTestScores)
    budgets = BudgetsPlugin(core)
    evaluations = EvaluationsPlugin(core)
    proxy = ProxyPlugin(core, prompts=prompts, budgets=budgets, evaluations=evaluations)
    testing = TestingPlugin(
        core, proxy=proxy, prompts=prompts, evaluations=evaluations, budgets=budgets
    )
    analytics = AnalyticsPlugin(core, testing=testing, budgets=budgets, evaluations=evaluations)
    return Litestar(
        plugins=[core, prompts, budgets, evaluations, proxy, testing, analytics],
        openapi_config=OpenAPIConfig(title="Sluice", version="0.1.0", path="/schema"),
        logging_config=None,  # ours is set by the CLI; Litestar's logs every request at INFO
        debug=False,
        # Set here, not in CorePlugin: Litestar 2 reads this argument, not the plugin's config.
        request_max_body_size=settings.server.max_body_bytes,
        # Every JSON body and every parameter passes the gateway's input bounds first.
        request_class=SluiceRequest,
        before_request=check_parameters,
        # After every plugin's lifespan has built its part: freeze what start-up made, so the
        # collector's full passes stop walking it (the p99 stalls, bench/results/tail.md).
        on_startup=[settle_heap],
    )
