"""The app factory: Litestar with the core and one plugin per capability."""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from gateway.analytics.plugin import AnalyticsPlugin
from gateway.budgets.plugin import BudgetsPlugin
from gateway.core import CorePlugin
from gateway.evaluations.plugin import EvaluationsPlugin
from gateway.http import SluiceRequest, check_parameters
from gateway.prompts.plugin import PromptsPlugin
from gateway.settings import Settings, load_settings
from gateway.testing.plugin import TestingPlugin

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    return Litestar(
        plugins=[
            CorePlugin(settings),
            PromptsPlugin(),
            BudgetsPlugin(),
            EvaluationsPlugin(),
            TestingPlugin(),
            AnalyticsPlugin(),
        ],
        openapi_config=OpenAPIConfig(title="Sluice", version="0.1.0", path="/schema"),
        logging_config=None,  # ours is set by the CLI; Litestar's logs every request at INFO
        debug=False,
        # Set here, not in CorePlugin: Litestar 2 reads this argument, not the plugin's config.
        request_max_body_size=settings.server.max_body_bytes,
        # Every JSON body and every parameter passes the gateway's input bounds first.
        request_class=SluiceRequest,
        before_request=check_parameters,
    )
