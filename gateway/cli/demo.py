"""`sluice demo`: a gateway in front of the built-in fake provider, exercised end to end."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli.command import configure_logging, server_settings

__all__ = ["register"]


def register(commands: Any) -> None:
    demo = commands.add_parser("demo", help="see Sluice work end to end with no provider key")
    demo.set_defaults(run=_demo)


def _demo(args: argparse.Namespace) -> int:
    from sluice_devtools.demo import run_demo

    settings = server_settings()
    configure_logging()
    return run_demo(settings)
