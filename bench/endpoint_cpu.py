#!/usr/bin/env python3
"""Gateway CPU per request, by endpoint: chat completions beside the Responses API, JSON and SSE.

Starts the fake upstream (`sluice fake-upstream`) and one `sluice serve` on SQLite, sends the
same short conversation to each endpoint from a few client threads, and reads the gateway
process's CPU time from /proc before and after each run: the fake's and the client's CPU are
not counted. Every answer is checked (status 200; streams end with `[DONE]` or
`response.completed`). Writes bench/results/endpoint_cpu.md.

    .venv/bin/python bench/endpoint_cpu.py [--requests 2000] [--threads 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from procs import Processes, cpu_seconds, machine_busy_seconds, process_tree
from stack import port_open

BENCH = Path(__file__).resolve().parent
SLUICE = str(Path(sys.executable).parent / "sluice")
ADMIN = "bench-admin"
TEXT = "Say hello in five words. #words=5"
CASES: dict[str, tuple[str, dict[str, Any], bytes | None]] = {
    "chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": TEXT}]}, None),
    "chat-stream": (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": TEXT}], "stream": True},
        b"data: [DONE]",
    ),
    "responses": ("/v1/responses", {"input": TEXT}, None),
    "responses-stream": ("/v1/responses", {"input": TEXT, "stream": True}, b"response.completed"),
}


def _wait_port(port: int, what: str) -> None:
    deadline = time.monotonic() + 30
    while not port_open("127.0.0.1", port):
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not open port {port}")
        time.sleep(0.1)


def _one(client: httpx.Client, path: str, body: dict[str, Any], end: bytes | None) -> None:
    response = client.post(path, json={"model": "gpt-4o-mini", **body})
    if response.status_code != 200 or (end is not None and end not in response.content):
        raise SystemExit(f"bad answer from {path}: {response.status_code} {response.text[:300]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    procs = Processes()
    work = Path(tempfile.mkdtemp(prefix="sluice-endpoint-cpu-"))
    env = {
        "PATH": str(Path(sys.executable).parent),
        "SLUICE_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'bench.db'}",
        "SLUICE_ADMIN_TOKEN": ADMIN,
        "SLUICE_UPSTREAM_BASE_URL": "http://127.0.0.1:18931/v1",
        "SLUICE_UPSTREAM_API_KEY": "sk-bench",
        "SLUICE_PORT": "18932",
    }
    rows = []
    try:
        procs.start("fake", [SLUICE, "fake-upstream", "--port", "18931"], log=work / "fake.log")
        migrated = procs.start("migrate", [SLUICE, "migrate"], env=env, log=work / "migrate.log")
        migrated.wait(timeout=120)
        procs.forget(migrated)
        gateway = procs.start("serve", [SLUICE, "serve"], env=env, log=work / "serve.log")
        _wait_port(18931, "the fake upstream")
        _wait_port(18932, "the gateway")
        base = "http://127.0.0.1:18932"
        key = httpx.post(
            f"{base}/admin/keys",
            json={"name": "bench"},
            headers={"Authorization": f"Bearer {ADMIN}"},
        ).json()["key"]
        clients = [
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
            for _ in range(args.threads)
        ]
        with ThreadPoolExecutor(args.threads) as pool:
            for name, (path, body, end) in CASES.items():
                warm = [
                    pool.submit(_one, clients[i % args.threads], path, body, end)
                    for i in range(200)
                ]
                for future in warm:
                    future.result()
                pids = process_tree(gateway.pid)
                cpu, busy, started = cpu_seconds(pids), machine_busy_seconds(), time.monotonic()
                futures = [
                    pool.submit(_one, clients[i % args.threads], path, body, end)
                    for i in range(args.requests)
                ]
                for future in futures:
                    future.result()
                elapsed = time.monotonic() - started
                used = cpu_seconds(pids) - cpu
                load = (machine_busy_seconds() - busy) / elapsed
                rows.append((name, used / args.requests * 1e6, args.requests / elapsed, load))
                print(f"{name}: {rows[-1][1]:.0f} µs CPU/request", flush=True)
    finally:
        procs.stop_all()
    lines = [
        "# Gateway CPU per request, by endpoint",
        "",
        f"`bench/endpoint_cpu.py --requests {args.requests} --threads {args.threads}`: one "
        "`sluice serve` (SQLite, lean client) in front of `sluice fake-upstream`; the gateway "
        "process's own CPU (/proc utime+stime) over the run, divided by the requests. "
        "Machine load is CPU-seconds busy per second across all cores (other sessions included).",
        "",
        "| case | gateway CPU per request (µs) | requests/s | machine busy (cores) |",
        "|---|---|---|---|",
        *(f"| {n} | {c:.0f} | {r:.0f} | {b:.2f} |" for n, c, r, b in rows),
        "",
    ]
    out = BENCH / "results" / "endpoint_cpu.md"
    out.write_text("\n".join(lines))
    print(json.dumps({n: round(c) for n, c, _, _ in rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
