"""The `sluice` command line: the gateway's processes and the admin verbs a person types.

Server commands (`serve`, `worker`, `migrate`, `demo`, `fake-upstream`) run the gateway's own
code; client commands (`prompts`, `test`, `keys`, `budgets`, `pricing`) talk to a running
gateway's admin API over HTTP (`--url`/`--token`, else SLUICE_URL or SLUICE_HOST:SLUICE_PORT,
and SLUICE_ADMIN_TOKEN), so curl is optional.

Start-up cost shapes this package. Importing the app (Litestar, SQLAlchemy, every plugin) takes
seconds, and `sluice --help` must answer at once. So each subcommand is a module here whose top
level imports only argparse-level code; it registers its parser and imports what the command
needs inside the function that runs it. Those function-level imports are the one deliberate
exception to the house rule against lazy imports: they exist for start-up time, not to dodge an
import cycle. tests/integration/test_cli.py checks that `--help` loads none of the heavy
modules, and bench/cli_help.py times it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from gateway.cli import (
    budgets,
    demo,
    fake_upstream,
    keys,
    migrate,
    pricing,
    prompts,
    serve,
    testruns,
    worker,
)
from gateway.cli.command import Command, CommandError

__all__ = ["build_parser", "main"]


class _Version(argparse.Action):
    """`--version`: the installed package's version, looked up only when asked (it costs a
    scan of the installed distributions, which every `--help` would pay otherwise)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("sluice")
        except PackageNotFoundError:  # run from a checkout that was never installed
            number = "unknown"
        print(f"sluice {number}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sluice", description="Sluice, the LLM gateway.")
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server = (serve, worker, migrate, demo)
    client = (prompts, testruns, keys, budgets, pricing)
    for module in (*server, *client, fake_upstream):  # the order `--help` lists them in
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Command = args.run
    try:
        return run(args)
    except CommandError as exc:
        for line in exc.lines:
            print(f"error: {line}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
