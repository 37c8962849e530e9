#!/usr/bin/env python3
"""How two gateway workers share a burst of new connections: uvicorn's supervisor vs ours.

`uvicorn --workers 2` shares one listening socket between its workers; `sluice serve --workers 2`
gives each worker its own SO_REUSEPORT socket. This opens `--connections` (32) connections at
once to /healthz, `--rounds` (5) times, and counts per worker pid the connections it accepted
(the gateway's end of each connection is found in /proc, so nothing is added to the product).
Both servers run the real app (`gateway.app:create_app`) on SQLite and Redis db 9.

    .venv/bin/python bench/worker_spread.py [--connections 32] [--rounds 5]

Writes nothing; paste its lines into bench/results/workers.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".venv" / "bin"


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _owners(pids: list[int]) -> dict[int, int]:
    owners = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                owners[int(target[8:-1])] = pid
    return owners


def _accepted(port: int, pids: list[int]) -> Counter[int]:
    """Established connections on `port`, by the worker holding the server side."""
    owners = _owners(pids)
    counts: Counter[int] = Counter()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port:
            inode = int(fields[9])
            if inode in owners:
                counts[owners[inode]] += 1
    return counts


async def _round(port: int, connections: int, workers: list[int]) -> Counter[int]:
    """Open the connections at once, each answered once, and count them while still open."""

    async def one() -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
        await reader.readuntil(b'{"status":"ok"}')
        return writer

    writers = await asyncio.gather(*(one() for _ in range(connections)))
    try:
        return _accepted(port, workers)
    finally:
        for writer in writers:
            writer.close()


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def measure(name: str, argv: list[str], env: dict[str, str], args: argparse.Namespace) -> None:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(args.port, proc)
        time.sleep(3)  # every worker up, not only the first
        workers = [p for p in _children(proc.pid) if _owners([p])]
        total: Counter[int] = Counter()
        splits = []
        for _ in range(args.rounds):
            counts = asyncio.run(_round(args.port, args.connections, workers))
            splits.append(sorted(counts.values()))
            total.update(counts)
            time.sleep(0.5)
        print(f"{name}: per round {splits}; in all {sorted(total.values())}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--port", type=int, default=18095)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sluice-spread-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update(
            SLUICE_DATABASE_URL=f"sqlite:///{tmp}/spread.db",
            SLUICE_REDIS_URL=args.redis_url,
            SLUICE_UPSTREAM_BASE_URL="http://127.0.0.1:9/v1",  # never called: /healthz only
            SLUICE_PORT=str(args.port),
        )
        subprocess.run([str(BIN / "sluice"), "migrate"], env=env, check=True, capture_output=True)
        uvicorn = [str(BIN / "uvicorn"), "--factory", "gateway.app:create_app", "--workers", "2"]
        uvicorn += ["--port", str(args.port), "--loop", "uvloop", "--http", "httptools"]
        measure("uvicorn --workers 2 (one shared socket)", uvicorn, env, args)
        sluice = [str(BIN / "sluice"), "serve", "--workers", "2"]
        measure("sluice serve --workers 2 (SO_REUSEPORT)", sluice, env, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
