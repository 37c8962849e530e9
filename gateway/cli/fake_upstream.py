"""`sluice fake-upstream`: the deterministic fake provider the tests and the demo use."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli.command import configure_logging

__all__ = ["register"]


def register(commands: Any) -> None:
    fake = commands.add_parser("fake-upstream", help="run the deterministic fake provider")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8090)
    fake.set_defaults(run=_fake_upstream)


def _fake_upstream(args: argparse.Namespace) -> int:
    from sluice_devtools.fake_upstream import run_fake_upstream

    configure_logging()
    run_fake_upstream(args.host, args.port)
    return 0
