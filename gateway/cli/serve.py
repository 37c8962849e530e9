"""`sluice serve`: check everything it can, then run the gateway under uvicorn.

Every bad setting and every problem in SLUICE_CONFIG is reported before "listening" is logged,
one `error:` line each, exit code 2: the routing and the price table are checked here rather
than left to the app's lifespan, where uvicorn would print a traceback after the banner.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from gateway.cli.command import CommandError, configure_logging, server_settings
from gateway.settings import Settings

__all__ = ["check_config_file", "register"]

log = logging.getLogger("sluice")


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="overrides SLUICE_HOST")
    serve.add_argument("--port", type=int, help="overrides SLUICE_PORT")
    serve.set_defaults(run=_serve)


def check_config_file(settings: Settings) -> None:
    """Raise CommandError with every problem of SLUICE_CONFIG: its TOML, routes and prices."""
    from gateway.budgets.pricing import prices_from_config
    from gateway.upstream.routing import ConfigFileError, ModelRouter, load_config_file

    path = settings.server.config_file
    if path is None:
        return
    try:
        config = load_config_file(path)
    except ConfigFileError as exc:
        raise CommandError(*(f"invalid SLUICE_CONFIG {path}: {p}" for p in exc.problems)) from None
    problems: list[str] = []
    try:
        ModelRouter.from_config(settings.upstream, config, path=path)
    except ConfigFileError as exc:
        problems.extend(exc.problems)
    problems.extend(prices_from_config(config)[1])
    if problems:
        raise CommandError(*(f"invalid SLUICE_CONFIG {path}: {p}" for p in problems))


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    import uvicorn

    from gateway.app import create_app
    from gateway.db.migrate import prepare_database

    settings = server_settings()
    check_config_file(settings)
    configure_logging()
    problem = asyncio.run(prepare_database(settings.database))
    if problem:
        raise CommandError(problem)
    app = create_app(settings)
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    log.info(
        "Sluice listening on http://%s:%d (OpenAI base_url: http://%s:%d/v1)",
        host,
        port,
        host,
        port,
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,  # uvicorn's records go through configure_logging's escaping formatter
        log_level="warning",
        timeout_graceful_shutdown=15,
        backlog=4096,
    )
    return 0
