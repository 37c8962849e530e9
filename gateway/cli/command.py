"""What every subcommand shares: its signature, its failure, and the server's settings.

Only the standard library and gateway.settings (itself standard library only) are imported
here, so building the parser stays cheap (see the package docstring).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from gateway.logformat import configure_logging
from gateway.settings import Settings, SettingsError, load_settings

__all__ = ["Command", "CommandError", "configure_logging", "server_settings", "usd"]

Command = Callable[[argparse.Namespace], int]
"""A subcommand: parsed arguments in, exit code out."""


class CommandError(Exception):
    """A failure the CLI reports as `error: LINE` on stderr, one line per problem, no traceback.

    Exit code 2 by default: the command could not do its job (bad settings, an unreachable
    gateway, a refused call).
    """

    def __init__(self, *lines: str, code: int = 2) -> None:
        self.lines = [" ".join(line.split()) for line in lines] or ["failed"]
        self.code = code
        super().__init__("; ".join(self.lines))


def server_settings() -> Settings:
    """The gateway's settings from the environment, or every bad value as a CommandError."""
    try:
        return load_settings()
    except SettingsError as exc:
        raise CommandError(*exc.problems) from None


def usd(text: str) -> str:
    """argparse type: an amount in USD, kept as the text typed so no float rounding creeps in."""
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount in USD") from None
    if not amount.is_finite() or amount < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount in USD")
    return text
