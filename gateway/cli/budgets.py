"""`sluice budgets create|list|show|delete`: spending limits through `/admin/budgets`."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli.command import usd
from gateway.cli.endpoint import add_endpoint_options, resolve_endpoint

__all__ = ["register"]

SCOPES = ("global", "key", "prompt", "user", "tag")
PERIODS = ("daily", "monthly", "total")


def register(commands: Any) -> None:
    budgets = commands.add_parser("budgets", help="create, list, show and delete budgets")
    actions = budgets.add_subparsers(dest="budgets_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a budget (enforced at once)")
    create.add_argument("--scope", choices=SCOPES, required=True, help="what the budget limits")
    create.add_argument(
        "--value",
        help="the key id, prompt slug, user or tag (name=value) it applies to; not for global",
    )
    create.add_argument("--period", choices=PERIODS, required=True, help="when spend resets")
    create.add_argument("--limit", type=usd, required=True, metavar="USD", help="hard limit")
    create.add_argument(
        "--soft-limit", type=float, metavar="PCT", help="alert at this percent of the limit"
    )
    create.set_defaults(run=_create)
    listing = actions.add_parser("list", help="list budgets with their spend right now")
    listing.add_argument("--scope", choices=SCOPES, help="only budgets of this scope")
    listing.set_defaults(run=_list)
    show = actions.add_parser("show", help="one budget: spent, reserved and remaining")
    show.add_argument("budget_id", metavar="BUDGET_ID")
    show.set_defaults(run=_show)
    delete = actions.add_parser("delete", help="delete a budget")
    delete.add_argument("budget_id", metavar="BUDGET_ID")
    delete.set_defaults(run=_delete)
    for action in (create, listing, show):
        action.add_argument("--json", action="store_true", help="print the API's JSON")
    for action in (create, listing, show, delete):
        add_endpoint_options(action)


def _fields(budget: dict[str, Any]) -> list[tuple[str, str]]:
    from gateway.cli.output import cell, when

    return [
        ("id", budget["id"]),
        ("scope", budget["scope"]),
        ("value", cell(budget["scope_value"])),
        ("period", budget["period"]),
        ("limit $", cell(budget["limit_usd"])),
        ("soft limit %", cell(budget["soft_limit_pct"])),
        ("window", budget["window"]),
        ("resets at", when(budget["resets_at"])),
        ("spent $", cell(budget["spent_usd"], ".6f")),
        ("reserved $", cell(budget["reserved_usd"], ".6f")),
        ("remaining $", cell(budget["remaining_usd"], ".6f")),
        ("soft limit reached", "yes" if budget["soft_limit_reached"] else "no"),
    ]


def _show_one(budget: dict[str, Any], as_json: bool) -> int:
    from gateway.cli.output import print_fields, print_json

    if as_json:
        print_json(budget)
    else:
        print_fields(_fields(budget))
    return 0


def _create(args: argparse.Namespace) -> int:
    from gateway.cli.admin_client import AdminClient

    body: dict[str, Any] = {"scope": args.scope, "period": args.period, "limit_usd": args.limit}
    if args.value is not None:
        body["scope_value"] = args.value
    if args.soft_limit is not None:
        body["soft_limit_pct"] = args.soft_limit
    with AdminClient(resolve_endpoint(args)) as client:
        budget = client.call("POST", "/admin/budgets", json=body)
    return _show_one(budget, args.json)


def _show(args: argparse.Namespace) -> int:
    from gateway.cli.admin_client import AdminClient, segment

    with AdminClient(resolve_endpoint(args)) as client:
        budget = client.call("GET", f"/admin/budgets/{segment(args.budget_id)}")
    return _show_one(budget, args.json)


def _list(args: argparse.Namespace) -> int:
    from gateway.cli.admin_client import AdminClient
    from gateway.cli.output import cell, print_json, print_table

    with AdminClient(resolve_endpoint(args)) as client:
        budgets = client.every("/admin/budgets", scope=args.scope)
    if args.json:
        print_json(budgets)
        return 0
    columns = ["id", "scope", "value", "period", "window", "limit $", "spent $", "remaining $"]
    rows = [
        [
            b["id"],
            b["scope"],
            cell(b["scope_value"]),
            b["period"],
            b["window"],
            cell(b["limit_usd"]),
            cell(b["spent_usd"], ".6f"),
            cell(b["remaining_usd"], ".6f"),
        ]
        for b in budgets
    ]
    print_table(columns, rows)
    return 0


def _delete(args: argparse.Namespace) -> int:
    from gateway.cli.admin_client import AdminClient, segment

    with AdminClient(resolve_endpoint(args)) as client:
        client.call("DELETE", f"/admin/budgets/{segment(args.budget_id)}")
    print(f"deleted budget {args.budget_id}")
    return 0
