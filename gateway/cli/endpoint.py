"""Where client commands find the gateway: `--url`/`--token`, else the environment.

The URL is `--url`, else SLUICE_URL, else http://SLUICE_HOST:SLUICE_PORT (the address `sluice
serve` listens on in the same environment; a wildcard host means this machine). The token is
`--token`, else SLUICE_ADMIN_TOKEN. Standard library only: it runs while the parser is built.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from gateway.cli.command import CommandError, server_settings

__all__ = ["Endpoint", "add_endpoint_options", "resolve_endpoint"]

_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}  # noqa: S104 (a listen address, mapped to loopback)


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    token: str


def add_endpoint_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", help="the gateway (default: $SLUICE_URL, else http://$SLUICE_HOST:$SLUICE_PORT)"
    )
    parser.add_argument("--token", help="the admin token (default: $SLUICE_ADMIN_TOKEN)")


def resolve_endpoint(args: argparse.Namespace) -> Endpoint:
    url = args.url or os.environ.get("SLUICE_URL")
    if not url:
        # Parsed like `serve` parses them, so a bad SLUICE_PORT is one clear line here too.
        server = server_settings().server
        host = "127.0.0.1" if server.host in _WILDCARD_HOSTS else server.host
        host = f"[{host}]" if ":" in host else host
        url = f"http://{host}:{server.port}"
    token = args.token or os.environ.get("SLUICE_ADMIN_TOKEN")
    if not token:
        raise CommandError("set SLUICE_ADMIN_TOKEN (or pass --token)")
    return Endpoint(url.rstrip("/"), token)
