"""`sluice keys create|list|revoke`: gateway keys through the admin API (`/admin/keys`).

`create` prints the secret alone on stdout (so `KEY=$(sluice keys create my-app)` works) and
what it is on stderr; the secret is shown once, as the API does.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway.cli.endpoint import add_endpoint_options, resolve_endpoint

__all__ = ["register"]


def register(commands: Any) -> None:
    keys = commands.add_parser("keys", help="create, list and revoke gateway keys")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key; prints its secret (shown once)")
    create.add_argument("name", help="what the key is for, e.g. the app using it")
    create.set_defaults(run=_create)
    listing = actions.add_parser("list", help="list keys (never their secrets)")
    listing.set_defaults(run=_list)
    revoke = actions.add_parser("revoke", help="revoke a key (refused within one second)")
    revoke.add_argument("key_id", metavar="KEY_ID")
    revoke.set_defaults(run=_revoke)
    for action in (create, listing, revoke):
        action.add_argument("--json", action="store_true", help="print the API's JSON")
        add_endpoint_options(action)


def _create(args: argparse.Namespace) -> int:
    from gateway.cli.admin_client import AdminClient
    from gateway.cli.output import print_json

    with AdminClient(resolve_endpoint(args)) as client:
        key = client.call("POST", "/admin/keys", json={"name": args.name})
    if args.json:
        print_json(key)
        return 0
    print(key["key"])
    print(
        f"created key {key['id']} ({key['name']}, prefix {key['prefix']}); "
        "the secret above is shown once: Sluice keeps only its hash",
        file=sys.stderr,
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    from gateway.cli.admin_client import AdminClient
    from gateway.cli.output import print_json, print_table, when

    with AdminClient(resolve_endpoint(args)) as client:
        keys = client.every("/admin/keys")
    if args.json:
        print_json(keys)
        return 0
    rows = [
        [k["id"], k["name"], k["prefix"], when(k["created_at"]), when(k["revoked_at"])]
        for k in keys
    ]
    print_table(["id", "name", "prefix", "created", "revoked"], rows)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from gateway.cli.admin_client import AdminClient, segment
    from gateway.cli.output import print_json, when

    with AdminClient(resolve_endpoint(args)) as client:
        key = client.call("DELETE", f"/admin/keys/{segment(args.key_id)}")
    if args.json:
        print_json(key)
    else:
        print(f"revoked key {key['id']} ({key['name']}) at {when(key['revoked_at'])}")
    return 0
