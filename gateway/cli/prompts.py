"""`sluice prompts push|pull DIR`: prompt files to and from a gateway (gateway/prompts/sync.py)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from gateway.cli.endpoint import add_endpoint_options, resolve_endpoint

__all__ = ["register"]


def register(commands: Any) -> None:
    prompts = commands.add_parser("prompts", help="keep prompts in files: push and pull")
    actions = prompts.add_subparsers(dest="prompts_command", required=True, metavar="ACTION")
    push = actions.add_parser("push", help="apply every prompt file in DIR (all or nothing)")
    push.add_argument("directory", metavar="DIR")
    add_endpoint_options(push)
    push.add_argument("--dry-run", action="store_true", help="report, change nothing")
    push.add_argument("--author", help="recorded on new versions (default $USER)")
    push.set_defaults(run=_push)
    pull = actions.add_parser("pull", help="write every prompt as a file in DIR")
    pull.add_argument("directory", metavar="DIR")
    add_endpoint_options(pull)
    pull.add_argument(
        "--format",
        choices=["yaml", "toml"],
        default="yaml",
        help="for new files; existing files keep theirs",
    )
    pull.add_argument(
        "--prompt", action="append", metavar="SLUG", help="only this prompt (repeatable)"
    )
    pull.set_defaults(run=_pull)


def _push(args: argparse.Namespace) -> int:
    from gateway.prompts.sync import AdminEndpoint, push

    endpoint = resolve_endpoint(args)
    author = args.author or os.environ.get("USER")
    return push(
        Path(args.directory),
        AdminEndpoint(endpoint.url, endpoint.token),
        dry_run=args.dry_run,
        created_by=author,
    )


def _pull(args: argparse.Namespace) -> int:
    from gateway.prompts.sync import AdminEndpoint, pull

    endpoint = resolve_endpoint(args)
    return pull(
        Path(args.directory),
        AdminEndpoint(endpoint.url, endpoint.token),
        file_format=args.format,
        prompts=args.prompt,
    )
