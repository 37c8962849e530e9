"""`sluice pricing show|set`: the price table in effect, through `/admin/pricing`.

Prices are USD per million tokens. `set` writes an admin price, which wins over SLUICE_CONFIG
and the shipped defaults; `set MODEL --remove` drops it so the configured or default price shows.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway.cli.command import CommandError, usd
from gateway.cli.endpoint import add_endpoint_options, resolve_endpoint

__all__ = ["register"]


def register(commands: Any) -> None:
    pricing = commands.add_parser("pricing", help="show and set model prices")
    actions = pricing.add_subparsers(dest="pricing_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="the price table in effect (USD per 1M tokens)")
    show.add_argument("models", nargs="*", metavar="MODEL", help="only these models")
    show.add_argument("--json", action="store_true", help="print the API's JSON")
    show.set_defaults(run=_show)
    put = actions.add_parser("set", help="set (or --remove) the admin price of a model")
    put.add_argument("model", metavar="MODEL", help='a model name, or "*" for unlisted models')
    put.add_argument("--input", type=usd, metavar="USD", help="per 1M input tokens")
    put.add_argument("--output", type=usd, metavar="USD", help="per 1M output tokens")
    put.add_argument("--cached-input", type=usd, metavar="USD", help="per 1M cached tokens")
    put.add_argument(
        "--max-output-tokens", type=int, metavar="N", help="the output cap budgets reserve for"
    )
    put.add_argument("--remove", action="store_true", help="remove the model's admin price")
    put.set_defaults(run=_set)
    for action in (show, put):
        add_endpoint_options(action)


def _print(table: dict[str, Any], models: list[str]) -> None:
    from gateway.cli.output import cell, is_terminal, print_table

    prices = table["models"]
    names = models or sorted(prices)
    rows = [
        [
            name,
            cell(prices[name]["input"]),
            cell(prices[name]["cached_input"]),
            cell(prices[name]["output"]),
            cell(prices[name]["max_output_tokens"]),
            prices[name]["source"],
        ]
        for name in names
        if name in prices
    ]
    columns = ["model", "input $", "cached input $", "output $", "max output", "source"]
    print_table(columns, rows)
    # Kept off a piped stdout, which stays one table; --json has it too.
    note = sys.stdout if is_terminal(sys.stdout) else sys.stderr
    print(f"unpriced models: {table['unpriced_models']}", file=note)


def _show(args: argparse.Namespace) -> int:
    from gateway.cli.admin_client import AdminClient
    from gateway.cli.output import print_json

    with AdminClient(resolve_endpoint(args)) as client:
        table = client.call("GET", "/admin/pricing")
    missing = [m for m in args.models if m not in table["models"]]
    if args.json:
        print_json(table)
    else:
        _print(table, args.models)
    if missing:
        raise CommandError(f"no price for {', '.join(missing)}", code=1)
    return 0


def _set(args: argparse.Namespace) -> int:
    from gateway.cli.admin_client import AdminClient

    if args.remove:
        spec: dict[str, Any] | None = None
    elif args.input is None or args.output is None:
        raise CommandError("pass --input and --output (USD per 1M tokens), or --remove")
    else:
        spec = {"input": args.input, "output": args.output}
        if args.cached_input is not None:
            spec["cached_input"] = args.cached_input
        if args.max_output_tokens is not None:
            spec["max_output_tokens"] = args.max_output_tokens
    with AdminClient(resolve_endpoint(args)) as client:
        table = client.call("PUT", "/admin/pricing", json={"models": {args.model: spec}})
    _print(table, [args.model])
    return 0
