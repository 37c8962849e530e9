"""`sluice serve`: check everything it can, then run the gateway under uvicorn.

Every bad setting and every problem in SLUICE_CONFIG is reported before "listening" is logged,
one `error:` line each, exit code 2: the routing and the price table are checked here rather
than left to the app's lifespan, where uvicorn would print a traceback after the banner.

`--workers N` (SLUICE_WORKERS) runs N processes on the port (gateway/cli/workers.py). All the
checks above, and the migrations, run once here in the parent before any worker starts; each
worker logs through the same formatter. Without Redis only one worker is allowed: budgets, the
caches and the evaluation queue then live in the process's memory, and two processes would
each keep their own (a budget could be spent once per worker). Asking for more is refused
rather than quietly cut to one, since the person asked for capacity they would not get.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from gateway.cli.command import CommandError, configure_logging, server_settings
from gateway.settings import Settings

__all__ = ["check_config_file", "register"]

log = logging.getLogger("sluice")


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="overrides SLUICE_HOST")
    serve.add_argument("--port", type=int, help="overrides SLUICE_PORT")
    serve.add_argument(
        "--workers",
        type=_positive_int,
        help="gateway processes on the port; overrides SLUICE_WORKERS (default: the CPU count "
        "with SLUICE_REDIS_URL, else 1)",
    )
    serve.set_defaults(run=_serve)


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return number


def _cpu_count() -> int:
    # The CPUs this process may run on (a container's or taskset's share), not the machine's.
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_count(settings: Settings, requested: int | None) -> int:
    """How many processes to run: --workers, else SLUICE_WORKERS, else the default."""
    asked, source = requested, "--workers"
    if asked is None:
        asked, source = settings.server.workers, "SLUICE_WORKERS"
    if settings.redis.url is None:
        if asked is not None and asked > 1:
            shown = f"--workers {asked}" if source == "--workers" else f"SLUICE_WORKERS={asked}"
            raise CommandError(
                f"{shown} needs SLUICE_REDIS_URL: without Redis the budgets, caches and "
                "evaluation queue live in one process's memory and several workers would each "
                "keep their own; set SLUICE_REDIS_URL, or run one worker"
            )
        return 1
    return asked if asked is not None else _cpu_count()


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
    from gateway.cli.workers import UVICORN_OPTIONS, Supervisor, check_port_free
    from gateway.db.migrate import prepare_database

    settings = server_settings()
    workers = worker_count(settings, args.workers)
    check_config_file(settings)
    configure_logging()
    # Once, here, before any worker exists: N workers migrating at once would race.
    problem = asyncio.run(prepare_database(settings.database))
    if problem:
        raise CommandError(problem)
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    if workers > 1:
        busy = check_port_free(host, port)
        if busy:
            raise CommandError(busy)
        _listening(host, port, f" with {workers} workers")
        return Supervisor(workers, host, port).run()
    app = create_app(settings)
    _listening(host, port, "")
    uvicorn.run(app, host=host, port=port, **UVICORN_OPTIONS)
    return 0


def _listening(host: str, port: int, workers: str) -> None:
    log.info(
        "Sluice listening on http://%s:%d%s (OpenAI base_url: http://%s:%d/v1)",
        host,
        port,
        workers,
        host,
        port,
    )
