"""`sluice test run` and `sluice test compare`: test runs from a terminal or a CI job.

Both talk to a running gateway's admin API (SLUICE_URL, default http://127.0.0.1:8080, and
SLUICE_ADMIN_TOKEN). `run` starts a run, draws a progress bar on stderr (pass/fail counts and
cost, plain ANSI), prints a result table on stdout and exits 1 when the gate fails: a case
failed, or, with --compare-to, a case regressed against that run. `compare BASELINE CANDIDATE`
prints the case-by-case diff and exits 1 when the gate fails. Exit 2: the run could not be
started or did not complete.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, TextIO

import httpx

__all__ = ["add_test_commands", "compare_command", "run_command"]

POLL_S = 0.25
BAR = 30


class CommandError(Exception):
    pass


def add_test_commands(commands: Any) -> None:
    """Add `sluice test run|compare` to the CLI's subcommands."""
    test = commands.add_parser("test", help="run a prompt's test suite through a gateway")
    actions = test.add_subparsers(dest="test_command", required=True)
    run = actions.add_parser("run", help="run the suite of SLUG and wait for the result")
    run.add_argument("slug")
    which = run.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="the version to test")
    which.add_argument("--label", help="the label whose version to test (default: production)")
    run.add_argument("--model", help="run on this model instead of the version's")
    run.add_argument("--tag", action="append", default=[], help="only cases with this tag")
    run.add_argument("--concurrency", type=int, default=4)
    run.add_argument("--compare-to", help="gate on no regression against this run id")
    run.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait (default 1h)")
    run.set_defaults(run=lambda args, settings: run_command(args))
    compare = actions.add_parser("compare", help="compare CANDIDATE with BASELINE, case by case")
    compare.add_argument("baseline", metavar="RUN_A", help="the baseline run id")
    compare.add_argument("candidate", metavar="RUN_B", help="the run to judge")
    compare.set_defaults(run=lambda args, settings: compare_command(args))


def _client() -> httpx.Client:
    url = os.environ.get("SLUICE_URL", "http://127.0.0.1:8080").rstrip("/")
    token = os.environ.get("SLUICE_ADMIN_TOKEN", "")
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0)


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise CommandError(f"cannot reach the gateway at {client.base_url}: {exc}") from None
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:500]
        raise CommandError(f"{method} {path}: HTTP {response.status_code}: {message}")
    return response.json()


def _bar(run: dict[str, Any]) -> str:
    total = max(run["total"], 1)
    filled = BAR * run["completed"] // total
    return (
        f"\r\x1b[2K[{'#' * filled}{'-' * (BAR - filled)}] {run['completed']}/{run['total']}  "
        f"\x1b[32mpass {run['passed']}\x1b[0m  \x1b[31mfail {run['failed']}\x1b[0m  "
        f"${run['cost_usd']:.6f}  {run['status']}"
    )


def _wait(client: httpx.Client, run_id: str, timeout: float, err: TextIO) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = _call(client, "GET", f"/admin/test-runs/{run_id}")
        err.write(_bar(run))
        err.flush()
        if run["status"] in ("completed", "failed", "cancelled"):
            err.write("\n")
            return run
        if time.monotonic() > deadline:
            err.write("\n")
            raise CommandError(f"run {run_id} did not finish within {timeout:g} s")
        time.sleep(POLL_S)


def _fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        out.write("\n")


def _print_results(run: dict[str, Any], results: list[dict[str, Any]], out: TextIO) -> None:
    rows = [["case", "status", "score", "latency ms", "tokens", "cost $", "error"]]
    for r in results:
        tokens = (r["prompt_tokens"] or 0) + (r["completion_tokens"] or 0)
        rows.append(
            [
                r["name"][:40],
                r["status"],
                _fmt(r["score"], ".3f"),
                _fmt(r["latency_ms"], ".0f"),
                str(tokens) if r["prompt_tokens"] is not None else "-",
                _fmt(r["cost_usd"], ".6f"),
                (r["error"] or "")[:60],
            ]
        )
    _table(rows, out)
    out.write(
        f"\nrun {run['id']}: {run['prompt']} v{run['version']} on {run['model']}: "
        f"{run['status']}, {run['passed']}/{run['total']} passed, mean score "
        f"{_fmt(run['mean_score'], '.3f')}, cost ${run['cost_usd']:.6f}, "
        f"{_fmt(run['duration_s'], '.1f')} s\n"
    )


def _print_comparison(comparison: dict[str, Any], out: TextIO) -> None:
    rows = [["case", "change", "score", "baseline", "Δ score", "Δ cost $", "Δ latency ms"]]
    for c in comparison["cases"]:
        rows.append(
            [
                c["name"][:40],
                c["change"],
                _fmt(c["score"], ".3f"),
                _fmt(c["baseline_score"], ".3f"),
                _fmt(c["score_delta"], "+.3f"),
                _fmt(c["cost_delta_usd"], "+.6f"),
                _fmt(c["latency_delta_ms"], "+.0f"),
            ]
        )
    _table(rows, out)
    verdict = "PASS" if comparison["gate"] else "FAIL"
    out.write(
        f"\ngate {verdict}: {comparison['reason']} (run {comparison['run_id']} against "
        f"{comparison['baseline_run_id']}; {comparison['fixed']} fixed, mean score Δ "
        f"{_fmt(comparison['mean_score_delta'], '+.3f')})\n"
    )


def run_command(
    args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    body: dict[str, Any] = {"prompt": args.slug, "concurrency": args.concurrency}
    for name, value in (("version", args.version), ("label", args.label)):
        if value is not None:
            body[name] = value
    if args.model:
        body["model_override"] = args.model
    if args.tag:
        body["tests"] = {"tags": args.tag}
    try:
        with _client() as client:
            started = _call(client, "POST", "/admin/test-runs", json=body)
            err.write(f"test run {started['id']}: {started['total']} cases\n")
            run = _wait(client, started["id"], args.timeout, err)
            results = _call(client, "GET", f"/admin/test-runs/{run['id']}/results")["data"]
            _print_results(run, results, out)
            if run["status"] != "completed":
                err.write(f"error: the run is {run['status']}: {run['error'] or ''}\n")
                return 2
            if args.compare_to:
                comparison = _call(
                    client, "GET", f"/admin/test-runs/{run['id']}/compare/{args.compare_to}"
                )
                _print_comparison(comparison, out)
                return 0 if comparison["gate"] else 1
    except CommandError as exc:
        err.write(f"\nerror: {exc}\n")
        return 2
    out.write(f"gate {'PASS' if run['gate'] else 'FAIL'}: {run['failed']} cases failed\n")
    return 0 if run["gate"] else 1


def compare_command(
    args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    try:
        with _client() as client:
            comparison = _call(
                client, "GET", f"/admin/test-runs/{args.candidate}/compare/{args.baseline}"
            )
    except CommandError as exc:
        err.write(f"error: {exc}\n")
        return 2
    _print_comparison(comparison, out)
    return 0 if comparison["gate"] else 1
