"""The `sluice` command line: serve, worker, migrate, demo and the tools the issues name."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence

import uvicorn

from gateway.app import create_app
from gateway.db.engine import create_engine
from gateway.db.migrate import migration_state, prepare_database, upgrade
from gateway.demo import run_demo
from gateway.evaluations.worker_cli import add_worker_command
from gateway.logformat import configure_logging
from gateway.prompts.sync import add_prompt_commands
from gateway.settings import Settings, SettingsError, load_settings
from gateway.testing.cli import add_test_commands
from gateway.upstream.fake import run_fake_upstream
from gateway.upstream.routing import ConfigFileError

__all__ = ["main"]

log = logging.getLogger("sluice")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    problem = asyncio.run(prepare_database(settings.database))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
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
        create_app(settings),
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


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> None:
        engine = create_engine(settings.database.url)
        try:
            await upgrade(engine, args.revision)
            state = await migration_state(engine)
            print(f"database at revision {state.current} (head {state.head})")
        finally:
            await engine.dispose()

    asyncio.run(run())
    return 0


def _fake_upstream(args: argparse.Namespace, settings: Settings) -> int:
    run_fake_upstream(args.host, args.port)
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    return run_demo(settings)


Command = Callable[[argparse.Namespace, Settings], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sluice", description="Sluice, the LLM gateway.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="overrides SLUICE_HOST")
    serve.add_argument("--port", type=int, help="overrides SLUICE_PORT")
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(run=_migrate)

    demo = commands.add_parser("demo", help="see Sluice work end to end with no provider key")
    demo.set_defaults(run=_demo)

    add_prompt_commands(commands)
    add_worker_command(commands)
    add_test_commands(commands)

    fake = commands.add_parser("fake-upstream", help="run the deterministic fake provider")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8090)
    fake.set_defaults(run=_fake_upstream)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging()
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run: Command = args.run
    try:
        return run(args, settings)
    except ConfigFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
