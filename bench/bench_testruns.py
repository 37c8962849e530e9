#!/usr/bin/env python3
"""How long a test run of 500 cases takes at concurrency 16, against the canned nginx upstream.

    .venv/bin/python bench/bench_testruns.py [--cases 500] [--concurrency 16] [--database both]

Starts nginx (bench/nginx, as bench/run.py does) and `sluice serve` on 127.0.0.1:18080, on a
fresh Postgres database `sluice_bench_testruns` and/or a fresh SQLite file. Creates a prompt,
imports the suite as one JSONL file (each case with two evaluators, `contains` and `length`),
starts one run and polls it to the end. Reports the run's own duration (first claim to last
result) and the wall time from POST to `completed`, and checks every case passed. Results go to
bench/results/testruns.md. Target: under 10 s for 500 cases at concurrency 16.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from procs import Processes  # noqa: E402
from stack import (  # noqa: E402
    ADMIN_TOKEN,
    GATEWAY_HOST,
    GATEWAY_PORT,
    UPSTREAM_JSON,
    VENV_BIN,
    BenchError,
    Stack,
    http,
    log,
    port_open,
)

PG = "postgresql://postgres@127.0.0.1:5432"
DB_NAME = "sluice_bench_testruns"
BASE = f"http://{GATEWAY_HOST}:{GATEWAY_PORT}"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TARGET_S = 10.0


def _admin(method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
    if raw is not None:
        import urllib.request

        req = urllib.request.Request(
            BASE + path, data=raw, method=method, headers={**AUTH, "Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read())
    status, _, payload = http(method, BASE + path, body, AUTH, timeout=120)
    if status >= 400:
        raise BenchError(f"{method} {path}: {status} {payload[:300]!r}")
    return json.loads(payload)


def _fresh_postgres() -> str:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}"


def _suite(cases: int) -> bytes:
    evaluators = [
        {"evaluator_key": "contains", "config": {"value": "Hello"}},
        {"evaluator_key": "length", "config": {"max": 200}},
    ]
    lines = [
        json.dumps(
            {
                "name": f"case {n:04d}",
                "messages": [{"role": "user", "content": f"Question number {n}?"}],
                "tags": ["bench"],
                "evaluators": evaluators,
            }
        )
        for n in range(cases)
    ]
    return ("\n".join(lines) + "\n").encode()


def _one(stack: Stack, label: str, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    env = stack.gateway_env({"SLUICE_DATABASE_URL": database_url})
    sluice = str(VENV_BIN / "sluice")
    subprocess.run([sluice, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    gateway = stack.procs.start(
        "sluice", [sluice, "serve"], env=env, log=stack.tmp / f"{label}.log"
    )
    try:
        deadline = time.monotonic() + 60
        while not port_open(GATEWAY_HOST, GATEWAY_PORT):
            if time.monotonic() > deadline:
                raise BenchError("the gateway did not start")
            time.sleep(0.1)
        _admin("POST", "/admin/prompts", {"slug": "bench"})
        _admin(
            "POST",
            "/admin/prompts/bench/versions",
            {"messages": [{"role": "system", "content": "Answer."}], "model": "gpt-4o-mini"},
        )
        imported = _admin("POST", "/admin/prompts/bench/tests/import", raw=_suite(args.cases))
        assert len(imported["data"]) == args.cases
        started = time.monotonic()
        run = _admin(
            "POST", "/admin/test-runs", {"prompt": "bench", "concurrency": args.concurrency}
        )
        while run["status"] not in ("completed", "failed", "cancelled"):
            time.sleep(0.05)
            run = _admin("GET", f"/admin/test-runs/{run['id']}")
        wall = time.monotonic() - started
        if run["status"] != "completed" or run["passed"] != args.cases:
            raise BenchError(f"run ended badly: {run}")
        log(f"{label}: {args.cases} cases in {run['duration_s']:.2f} s (wall {wall:.2f} s)")
        return {
            "database": label,
            "cases": args.cases,
            "concurrency": args.concurrency,
            "run_s": run["duration_s"],
            "wall_s": wall,
            "cases_per_s": args.cases / run["duration_s"],
            "mean_score": run["mean_score"],
            "passed": run["passed"],
        }
    finally:
        stack.procs.stop(gateway)


def _report(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        "# Test runs: 500 cases at concurrency 16",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()} "
        f"({platform.machine()}, Python {platform.python_version()}) with "
        "`.venv/bin/python bench/bench_testruns.py`.",
        "",
        "Upstream: the canned nginx of bench/nginx (answers in well under a millisecond), so the",
        "figures are the gateway's own work per case: the request path (render, route, budget",
        "stage, forward, log), the log flush before scoring, two evaluators, the evaluation rows,",
        "the result row and the run's progress heartbeat.",
        "",
        "| database | cases | concurrency | run (s) | POST to completed (s) | cases/s | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        verdict = "met" if r["wall_s"] < TARGET_S else "MISSED"
        lines.append(
            f"| {r['database']} | {r['cases']} | {r['concurrency']} | {r['run_s']:.2f} | "
            f"{r['wall_s']:.2f} | {r['cases_per_s']:.0f} | < {TARGET_S:.0f} s: {verdict} |"
        )
    lines += ["", "Every case passed (both evaluators) in every run."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database", choices=["postgres", "sqlite", "both"], default="both")
    args = parser.parse_args()
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="sluice-bench-testruns-") as tmp:
        stack = Stack(
            procs=procs,
            tmp=Path(tmp),
            nginx="/usr/sbin/nginx",
            sluice=str(VENV_BIN / "sluice"),
            database_url="",
            redis_url="",
        )
        try:
            stack.start_upstream()
            log(f"nginx up at {UPSTREAM_JSON}")
            rows = []
            if args.database in ("postgres", "both"):
                rows.append(_one(stack, "postgres", _fresh_postgres(), args))
            if args.database in ("sqlite", "both"):
                rows.append(_one(stack, "sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db", args))
        finally:
            procs.stop_all()
    out = BENCH / "results" / "testruns.md"
    out.write_text(_report(rows, args))
    log(f"wrote {out}")
    return 0 if all(r["wall_s"] < TARGET_S for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
