"""Load: wrk runs (throughput and latency) and an aiohttp client for time to first byte."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import select
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass

import aiohttp
from procs import Processes, exited
from stack import BENCH, BenchError, chat_body


@dataclass
class WrkResult:
    connections: int
    threads: int
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    non2xx: int
    socket_errors: int

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors


_RESULT_RE = re.compile(r"BENCH_RESULT (.*)")


def parse_wrk(out: str, connections: int, threads: int) -> WrkResult:
    """Read the line bench/wrk/common.lua's done() prints."""
    m = _RESULT_RE.search(out)
    if not m:
        raise BenchError(f"wrk printed no BENCH_RESULT line:\n{out[-2000:]}")
    kv = dict(item.split("=", 1) for item in m.group(1).split())

    def ms(key: str) -> float:
        return int(kv[key]) / 1000.0

    socket_errors = ("connect_err", "read_err", "write_err", "timeout_err")
    return WrkResult(
        connections=connections,
        threads=threads,
        requests=int(kv["requests"]),
        duration_s=int(kv["duration_us"]) / 1e6,
        rps=float(kv["rps"]),
        p50_ms=ms("p50_us"),
        p90_ms=ms("p90_us"),
        p99_ms=ms("p99_us"),
        max_ms=ms("max_us"),
        mean_ms=float(kv["mean_us"]) / 1000.0,
        non2xx=int(kv["non2xx"]),
        socket_errors=sum(int(kv[k]) for k in socket_errors),
    )


@dataclass
class Wrk:
    procs: Processes
    binary: str
    threads_when_concurrent: int = 2

    def run(
        self,
        url: str,
        *,
        stream: bool,
        connections: int,
        duration: float,
        api_key: str = "sk-bench-direct",
        headers: dict[str, str] | None = None,
        max_requests: int = 0,
    ) -> WrkResult:
        """One wrk run of `duration` seconds (or until `max_requests` responses, if given)."""
        threads = 1 if connections == 1 else max(1, min(self.threads_when_concurrent, connections))
        script = BENCH / "wrk" / ("chat_stream.lua" if stream else "chat.lua")
        per_thread = math.ceil(max_requests / threads) if max_requests else 0
        env = dict(
            os.environ,
            BENCH_API_KEY=api_key,
            BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in (headers or {}).items()),
            BENCH_MAX_REQUESTS=str(per_thread),
        )
        secs = max(1, math.ceil(duration))
        argv = [self.binary, f"-t{threads}", f"-c{connections}", f"-d{secs}s"]
        argv += ["--timeout", "10s", "-s", str(script), url]
        proc = self.procs.start(
            "wrk", argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            if max_requests:
                _stop_when_threads_done(proc, threads, deadline=time.monotonic() + secs + 5)
            out, err = proc.communicate(timeout=secs + 30)
        except subprocess.TimeoutExpired as exc:
            self.procs.stop(proc)
            raise BenchError(f"wrk did not finish within {secs + 30} s: {' '.join(argv)}") from exc
        self.procs.forget(proc)
        if proc.returncode != 0:
            raise BenchError(
                f"wrk exited {proc.returncode}: {err.decode(errors='replace')[-1000:].strip()}"
            )
        return parse_wrk(out.decode(errors="replace"), connections, threads)


def _stop_when_threads_done(proc: subprocess.Popen[bytes], threads: int, deadline: float) -> None:
    """With BENCH_MAX_REQUESTS each wrk thread prints BENCH_THREAD_DONE when it stops, but wrk
    itself waits out -d regardless; SIGINT makes it print its summary at once."""
    assert proc.stderr is not None
    fd, buf, done = proc.stderr.fileno(), b"", 0
    while done < threads and time.monotonic() < deadline and not exited(proc):
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
            done = buf.count(b"BENCH_THREAD_DONE")
    if not exited(proc):
        os.kill(proc.pid, signal.SIGINT)


# --- time to first byte ------------------------------------------------------------------------


def measure_ttfb(
    targets: dict[str, tuple[str, str]],
    headers: dict[str, str],
    requests: int,
    warmup: int = 20,
) -> dict[str, list[float]]:
    """Sequential streamed chat requests over one keep-alive connection per target, alternating
    between targets so they see the same machine; ms from sending to the first body byte.
    `targets` maps a name to (url, api key)."""
    budget = 30 + (requests + warmup) * len(targets) * 0.25
    try:
        return asyncio.run(
            asyncio.wait_for(_ttfb(targets, headers, requests, warmup), timeout=budget)
        )
    except TimeoutError as exc:
        raise BenchError(f"TTFB measurement did not finish within {budget:.0f} s") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise BenchError(f"TTFB measurement failed: {exc!r}") from exc


async def _ttfb(
    targets: dict[str, tuple[str, str]], headers: dict[str, str], n: int, warm: int
) -> dict[str, list[float]]:
    body = json.dumps(chat_body(True)).encode()
    timeout = aiohttp.ClientTimeout(total=10)
    sessions = {
        name: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), timeout=timeout)
        for name in targets
    }
    samples: dict[str, list[float]] = {name: [] for name in targets}
    try:
        for i in range(warm + n):
            for name, (url, key) in targets.items():
                hdrs = {
                    "Content-Type": "application/json",
                    "Accept": "text/event-stream",
                    "Authorization": f"Bearer {key}",
                    **headers,
                }
                t0 = time.perf_counter()
                async with sessions[name].post(url, data=body, headers=hdrs) as resp:
                    first = await resp.content.readany()
                    t1 = time.perf_counter()
                    whole = first + await resp.read()
                    if resp.status != 200 or b"[DONE]" not in whole:
                        raise BenchError(f"TTFB {name}: status {resp.status}, {whole[:300]!r}")
                if i >= warm:
                    samples[name].append((t1 - t0) * 1000)
    finally:
        for s in sessions.values():
            await s.close()
    return samples


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def ttfb_summary(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50_ms": percentile(samples, 50),
        "p99_ms": percentile(samples, 99),
        "mean_ms": statistics.fmean(samples) if samples else float("nan"),
    }
