"""`sluice test run` and `sluice test compare`: test runs from a terminal or a CI job.

Both talk to a running gateway's admin API (see gateway/cli/endpoint.py). `run` starts a run,
shows its progress on stderr (a rich progress bar on a terminal, one plain line per change
otherwise), prints a result table on stdout and exits 1 when the gate fails: a case failed, or,
with --compare-to, a case regressed against that run. Ctrl-C cancels the run on the server, says
so, and exits 130. `compare BASELINE CANDIDATE` prints the case-by-case diff and exits 1 when the
gate fails. Exit 2: the run could not be started or did not complete.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from gateway.cli.command import CommandError
from gateway.cli.endpoint import Endpoint, add_endpoint_options, resolve_endpoint

if TYPE_CHECKING:  # the client is imported when a command runs (see the package docstring)
    from gateway.cli.admin_client import AdminClient

__all__ = ["compare_command", "register", "run_command"]

POLL_S = 0.25
CANCEL_WAIT_S = 10.0
FINISHED = ("completed", "failed", "cancelled")


def register(commands: Any) -> None:
    test = commands.add_parser("test", help="run a prompt's test suite through a gateway")
    actions = test.add_subparsers(dest="test_command", required=True, metavar="ACTION")
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
    add_endpoint_options(run)
    run.set_defaults(run=run_command)
    compare = actions.add_parser("compare", help="compare CANDIDATE with BASELINE, case by case")
    compare.add_argument("baseline", metavar="RUN_A", help="the baseline run id")
    compare.add_argument("candidate", metavar="RUN_B", help="the run to judge")
    add_endpoint_options(compare)
    compare.set_defaults(run=compare_command)


class _PlainProgress:
    """One line per change of the counts: what a CI log or a pipe should get."""

    def __init__(self, err: TextIO) -> None:
        self._err = err
        self._last: tuple[int, str] | None = None

    def update(self, run: dict[str, Any]) -> None:
        state = (run["completed"], run["status"])
        if state != self._last:
            self._last = state
            self._err.write(
                f"{run['completed']}/{run['total']} done  pass {run['passed']}  "
                f"fail {run['failed']}  ${run['cost_usd']:.6f}  {run['status']}\n"
            )
            self._err.flush()

    def close(self) -> None:
        pass


class _BarProgress:
    def __init__(self, err: TextIO, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "[green]pass {task.fields[passed]}[/]  [red]fail {task.fields[failed]}[/]  "
                "${task.fields[cost]:.6f}  {task.fields[status]}"
            ),
            console=Console(file=err),
        )
        self._task = self._progress.add_task(
            "run", total=total, passed=0, failed=0, cost=0.0, status="pending"
        )
        self._progress.start()

    def update(self, run: dict[str, Any]) -> None:
        self._progress.update(
            self._task,
            completed=run["completed"],
            total=run["total"],
            passed=run["passed"],
            failed=run["failed"],
            cost=run["cost_usd"],
            status=run["status"],
        )

    def close(self) -> None:
        self._progress.stop()


def _wait(
    client: AdminClient, run_id: str, timeout: float, progress: _PlainProgress | _BarProgress
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = client.call("GET", f"/admin/test-runs/{run_id}")
        progress.update(run)
        if run["status"] in FINISHED:
            return run
        if time.monotonic() > deadline:
            raise CommandError(f"run {run_id} did not finish within {timeout:g} s")
        time.sleep(POLL_S)


def _cancel(endpoint: Endpoint, run_id: str, err: TextIO) -> int:
    """After Ctrl-C: cancel the run on the server (a fresh connection) and say what happened."""
    from gateway.cli.admin_client import AdminClient

    err.write(f"\ninterrupted: cancelling test run {run_id} on the server\n")
    requested = False
    try:
        with AdminClient(endpoint) as client:
            client.call("POST", f"/admin/test-runs/{run_id}/cancel")
            requested = True
            deadline = time.monotonic() + CANCEL_WAIT_S
            run = client.call("GET", f"/admin/test-runs/{run_id}")
            while run["status"] not in FINISHED and time.monotonic() < deadline:
                time.sleep(POLL_S)
                run = client.call("GET", f"/admin/test-runs/{run_id}")
    except CommandError as exc:
        err.write(f"error: could not cancel test run {run_id}: {exc}\n")
        return 130
    except KeyboardInterrupt:
        if requested:
            err.write(f"test run {run_id}: cancel requested on the server\n")
        else:
            err.write(
                f"test run {run_id} may still be running: "
                f"POST /admin/test-runs/{run_id}/cancel stops it\n"
            )
        return 130
    if run["status"] == "cancelled":
        err.write(
            f"test run {run_id} cancelled on the server "
            f"({run['completed']} of {run['total']} cases ran)\n"
        )
    else:
        err.write(f"test run {run_id}: cancel requested on the server; it is {run['status']}\n")
    return 130


def _results_table(results: list[dict[str, Any]], out: TextIO) -> None:
    from gateway.cli.output import cell, print_table

    rows = []
    for r in results:
        tokens = (r["prompt_tokens"] or 0) + (r["completion_tokens"] or 0)
        rows.append(
            [
                r["name"][:40],
                r["status"],
                cell(r["score"], ".3f"),
                cell(r["latency_ms"], ".0f"),
                str(tokens) if r["prompt_tokens"] is not None else "-",
                cell(r["cost_usd"], ".6f"),
                (r["error"] or "")[:60],
            ]
        )
    print_table(["case", "status", "score", "latency ms", "tokens", "cost $", "error"], rows, out)


def _summary(run: dict[str, Any]) -> str:
    from gateway.cli.output import cell

    return (
        f"\nrun {run['id']}: {run['prompt']} v{run['version']} on {run['model']}: "
        f"{run['status']}, {run['passed']}/{run['total']} passed, mean score "
        f"{cell(run['mean_score'], '.3f')}, cost ${run['cost_usd']:.6f}, "
        f"{cell(run['duration_s'], '.1f')} s\n"
    )


def _print_comparison(comparison: dict[str, Any], out: TextIO) -> None:
    from gateway.cli.output import cell, print_table

    rows = [
        [
            c["name"][:40],
            c["change"],
            cell(c["score"], ".3f"),
            cell(c["baseline_score"], ".3f"),
            cell(c["score_delta"], "+.3f"),
            cell(c["cost_delta_usd"], "+.6f"),
            cell(c["latency_delta_ms"], "+.0f"),
        ]
        for c in comparison["cases"]
    ]
    columns = ["case", "change", "score", "baseline", "Δ score", "Δ cost $", "Δ latency ms"]
    print_table(columns, rows, out)
    verdict = "PASS" if comparison["gate"] else "FAIL"
    out.write(
        f"\ngate {verdict}: {comparison['reason']} (run {comparison['run_id']} against "
        f"{comparison['baseline_run_id']}; {comparison['fixed']} fixed, mean score Δ "
        f"{cell(comparison['mean_score_delta'], '+.3f')})\n"
    )


def _run_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": args.slug, "concurrency": args.concurrency}
    for name, value in (("version", args.version), ("label", args.label)):
        if value is not None:
            body[name] = value
    if args.model:
        body["model_override"] = args.model
    if args.tag:
        body["tests"] = {"tags": args.tag}
    return body


def run_command(
    args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    from gateway.cli.admin_client import AdminClient, segment
    from gateway.cli.output import is_terminal

    endpoint = resolve_endpoint(args)
    with AdminClient(endpoint) as client:
        started = client.call("POST", "/admin/test-runs", json=_run_body(args))
        progress: _PlainProgress | _BarProgress | None = None
        interrupted = False
        try:  # from the moment the run exists, Ctrl-C cancels it
            err.write(f"test run {started['id']}: {started['total']} cases\n")
            err.flush()
            progress = (
                _BarProgress(err, started["total"]) if is_terminal(err) else _PlainProgress(err)
            )
            run = _wait(client, started["id"], args.timeout, progress)
        except KeyboardInterrupt:
            interrupted = True
        finally:  # before anything else is written to stderr
            if progress is not None:
                progress.close()
        if interrupted:
            return _cancel(endpoint, started["id"], err)
        results = client.call("GET", f"/admin/test-runs/{run['id']}/results")["data"]
        _results_table(results, out)
        out.write(_summary(run))
        if run["status"] != "completed":
            err.write(f"error: the run is {run['status']}: {run['error'] or ''}\n")
            return 2
        if args.compare_to:
            comparison = client.call(
                "GET", f"/admin/test-runs/{run['id']}/compare/{segment(args.compare_to)}"
            )
            _print_comparison(comparison, out)
            return 0 if comparison["gate"] else 1
    out.write(f"gate {'PASS' if run['gate'] else 'FAIL'}: {run['failed']} cases failed\n")
    return 0 if run["gate"] else 1


def compare_command(
    args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    from gateway.cli.admin_client import AdminClient, segment

    with AdminClient(resolve_endpoint(args)) as client:
        comparison = client.call(
            "GET",
            f"/admin/test-runs/{segment(args.candidate)}/compare/{segment(args.baseline)}",
        )
    _print_comparison(comparison, out)
    return 0 if comparison["gate"] else 1
