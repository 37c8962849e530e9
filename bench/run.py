#!/usr/bin/env python3
"""Benchmark the Sluice gateway against a near-zero-CPU upstream; write bench/results/latest.md.

    bash bench/setup.sh && .venv/bin/python bench/run.py [--duration 10] [--cases default]

Steps: start nginx with canned OpenAI answers (bench/nginx) and measure it directly with wrk;
reset the bench database and Redis db and run `sluice migrate`; then for every case start
`sluice serve` with the case's environment, create a gateway key, warm up and measure the
same wrk runs through the gateway (streamed cases also compare time to first byte). Then the
gateway's RSS over a long run and, with --profile, a profile under c=32 load. Every child
process is stopped on exit, error or Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from cases import AdminError, Case, select_cases
from loadgen import Wrk, WrkResult, measure_ttfb, ttfb_summary
from loopstall import summarise as summarise_stalls
from procs import (
    Processes,
    cpu_seconds,
    exited,
    machine_busy_seconds,
    own_cpu_seconds,
    process_tree,
    rss_kib,
)
from profiling import record_pyspy, summarise_cprofile
from report import render_markdown
from stack import (
    BENCH,
    REPO,
    UPSTREAM_HOST,
    UPSTREAM_JSON,
    UPSTREAM_PORT,
    UPSTREAM_SSE,
    VENV_BIN,
    BenchError,
    Gateway,
    Stack,
    chat_body,
    check_chat_answer,
    http,
    log,
    tail,
)


class Bench:
    """One benchmark run: the stack, the load generator and the results being collected."""

    def __init__(self, args: argparse.Namespace, procs: Processes, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
        self.stack = Stack(
            procs=procs,
            tmp=tmp,
            nginx=args.nginx,
            sluice=args.sluice,
            database_url=args.database_url,
            redis_url=args.redis_url,
            keep_db=args.keep_db,
            gateway_wait=args.gateway_wait,
            extra_env=client_env(args),
        )
        self.wrk = Wrk(procs, args.wrk, args.wrk_threads)
        self.results: dict[str, Any] = {}

    def run(self) -> dict[str, Any]:
        args = self.args
        cases = select_cases(args.cases)
        results: dict[str, Any] = {
            "machine": machine_info(args),
            "settings": {
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "concurrency": self.concurrencies,
                "wrk_threads": args.wrk_threads,
                "repeat": args.repeat,
                "ttfb_requests": args.ttfb_requests,
                "rss_requests": args.rss_requests,
                "database_url": args.database_url,
                "redis_url": args.redis_url or "(none: embedded mode)",
                "upstream_client": args.client,
                "redis_client": args.redis,
            },
            "cases": [],
            "notes": self.stack.notes,
        }
        self.results = results

        busy0, own0, wall0 = machine_busy_seconds(), own_cpu_seconds(), time.monotonic()
        log(f"starting nginx on {UPSTREAM_HOST}:{UPSTREAM_PORT}")
        nginx = self.stack.start_upstream()
        direct = self.measure_direct({c.stream for c in cases})
        direct_ttfb = None
        if any(c.stream for c in cases):
            log(f"direct TTFB, {args.ttfb_requests} sequential streamed requests")
            target = {"direct": (f"{UPSTREAM_SSE}/chat/completions", "sk-bench-direct")}
            direct_ttfb = measure_ttfb(target, {}, args.ttfb_requests)["direct"]

        skipped = "--direct-only" if args.direct_only else self.stack.sluice_unavailable()
        if not skipped:
            try:
                log("resetting the bench database and Redis db; `sluice migrate`")
                self.stack.reset_stores()
                self.stack.migrate()
            except (BenchError, OSError) as exc:
                skipped = str(exc)
        if skipped:
            log(f"gateway not measured: {skipped}")
        results["gateway_skipped"] = skipped

        for case in cases:
            entry: dict[str, Any] = {
                "name": case.name,
                "description": case.description,
                "stream": case.stream,
                "headers": dict(case.headers),
                "gateway_env": dict(case.gateway_env),
                "error": None,
                "runs": [
                    {
                        "concurrency": conc,
                        "direct": asdict(direct[(case.stream, conc)]),
                        "gateway": None,
                        "gateway_cpu_us_per_request": None,
                    }
                    for conc in self.concurrencies
                ],
            }
            if direct_ttfb is not None and case.stream:
                entry["ttfb"] = {"direct": ttfb_summary(direct_ttfb), "gateway": None}
            results["cases"].append(entry)
            if skipped:
                continue
            try:
                self.measure_case(case, entry)
            except Exception as exc:  # a case (its setup hook above all) must not end the run
                entry["error"] = str(exc) if isinstance(exc, BenchError | AdminError) else repr(exc)
                entry["gateway_log_tail"] = tail(self.tmp / f"gateway-{case.name}.log", 30)
                log(f"case {case.name} failed: {exc}")
        results["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
        self.stack.procs.stop(nginx)
        # Everything this run started has been waited for now, so its CPU time is in
        # own_cpu_seconds(); the rest of the machine's busy time is someone else's work.
        wall = time.monotonic() - wall0
        others = max(0.0, (machine_busy_seconds() - busy0) - (own_cpu_seconds() - own0))
        share = others / (wall * results["machine"]["nproc"]) if wall > 0 else 0.0
        results["machine"]["other_cpu"] = {"seconds": others, "wall_s": wall, "share": share}
        return results

    def measure_direct(self, stream_modes: set[bool]) -> dict[tuple[bool, int], Any]:
        """The upstream alone, once per (stream, concurrency): it ignores the cases' headers."""
        direct = {}
        for stream in sorted(stream_modes):
            base = UPSTREAM_SSE if stream else UPSTREAM_JSON
            for conc in self.concurrencies:
                kind = "stream" if stream else "json"
                log(f"direct {kind} c={conc} for {self.args.duration:g}s{self.times}")
                attempts = [
                    self.wrk.run(
                        f"{base}/chat/completions",
                        stream=stream,
                        connections=conc,
                        duration=self.args.duration,
                    )
                    for _ in range(self.args.repeat)
                ]
                direct[(stream, conc)] = max(attempts, key=lambda r: r.rps)
        return direct

    @property
    def times(self) -> str:
        return f", best of {self.args.repeat}" if self.args.repeat > 1 else ""

    def measure_case(self, case: Case, entry: dict[str, Any]) -> None:
        args = self.args
        upstream = UPSTREAM_SSE if case.stream else UPSTREAM_JSON
        env = self.stack.gateway_env({"SLUICE_UPSTREAM_BASE_URL": upstream, **case.gateway_env})
        log(f"case {case.name}: fresh database and Redis db, `sluice migrate`, the gateway")
        # A clean slate per case: one case's prompts and budgets must not tax the next; and
        # migrate again, as the code may have moved on since the run began.
        self.stack.reset_stores()
        self.stack.migrate(env)
        probe = self.tmp / f"stalls-{case.name}.json"
        argv = None
        if args.stall_probe:
            argv = [str(VENV_BIN / "python"), str(BENCH / "loopstall.py"), str(probe)]
            argv += [args.sluice, "serve"]
        gw = self.stack.start_gateway(case.name, env, argv=argv)
        windows: list[tuple[dict[str, Any], float, float]] = []
        try:
            admin = self.stack.admin_with_key(gw)
            headers = dict(case.headers)
            if case.setup is not None:
                headers.update(case.setup(admin) or {})
            auth = {"Authorization": f"Bearer {admin.key}", **headers}
            answer = http("POST", gw.chat_url, chat_body(case.stream), auth)
            problem = check_chat_answer(*answer, case.stream)
            if problem:
                raise BenchError(f"first request through the gateway failed: {problem}")
            got = {k.lower(): v for k, v in answer[1].items()}
            missing = [h for h in case.expect_headers if h.lower() not in got]
            if missing:
                raise BenchError(f"the gateway's answer lacks {', '.join(missing)}: {got}")
            entry["first_answer_headers"] = {
                k: v for k, v in answer[1].items() if k.lower().startswith("x-sluice-")
            }

            load = self.loader(gw.chat_url, case.stream, admin.key, headers)
            if args.warmup > 0:
                log(f"case {case.name}: warm-up {args.warmup:g}s")
                load(max(self.concurrencies), args.warmup)
            for run in entry["runs"]:
                conc = run["concurrency"]
                log(f"case {case.name}: gateway c={conc} for {args.duration:g}s{self.times}")
                began = time.time()
                attempts = [self.gateway_run(gw, load, conc) for _ in range(args.repeat)]
                windows.append((run, began, time.time()))
                res, cpu_us = max(attempts, key=lambda a: a[0].rps)
                run["gateway"] = asdict(res)
                run["gateway_cpu_us_per_request"] = cpu_us
            if case.verify is not None:
                try:
                    entry["check"] = case.verify(admin)
                except Exception as exc:  # a finding, not a failure of the measurements
                    entry["check"] = f"check failed: {exc!r}"
            if case.stream and "ttfb" in entry:
                log(f"case {case.name}: TTFB, direct and via the gateway, alternating")
                targets = {
                    "direct": (f"{UPSTREAM_SSE}/chat/completions", "sk-bench-direct"),
                    "gateway": (gw.chat_url, admin.key),
                }
                both = measure_ttfb(targets, headers, args.ttfb_requests)
                entry["ttfb"] = {k: ttfb_summary(v) for k, v in both.items()}
            first_json = next(c for c in self.results["cases"] if not c["stream"])
            if entry is first_json:
                if args.rss_requests > 0:
                    self.measure_rss(gw, load)
                if args.profile:
                    prof = self.profile(gw, case, env, admin.key, headers)
                    self.results["profile"] = prof
        finally:
            # SIGINT, as for cProfile below: the probe writes its report at exit, which a
            # SIGTERM uvicorn re-raises would skip.
            stop_signal = signal.SIGINT if args.stall_probe else signal.SIGTERM
            self.stack.procs.stop(gw.proc, sig=stop_signal, grace=15)
            for run, began, ended in windows if args.stall_probe else ():
                run["stalls"] = summarise_stalls(probe, began, ended, str(REPO))

    def gateway_run(
        self, gw: Gateway, load: Callable[..., WrkResult], conc: int
    ) -> tuple[WrkResult, float | None]:
        """One measured run, with the gateway's CPU time per request over it."""
        pids = process_tree(gw.proc.pid)
        cpu_before = cpu_seconds(pids)
        try:
            res = load(conc, self.args.duration)
        finally:
            if exited(gw.proc):
                raise BenchError(f"the gateway exited during the c={conc} run")
        cpu = cpu_seconds(pids) - cpu_before
        return res, (cpu / res.requests * 1e6 if res.requests else None)

    def loader(
        self, url: str, stream: bool, key: str, headers: dict[str, str]
    ) -> Callable[..., WrkResult]:
        """wrk runs of one case against one gateway: load(concurrency, seconds, **extra)."""

        def load(conc: int, secs: float, **kw: Any) -> WrkResult:
            return self.wrk.run(
                url,
                stream=stream,
                connections=conc,
                duration=secs,
                api_key=key,
                headers=headers,
                **kw,
            )

        return load

    def measure_rss(self, gw: Gateway, load: Callable[..., WrkResult]) -> None:
        args, conc = self.args, max(self.concurrencies)

        def reading() -> dict[str, int]:
            pids = process_tree(gw.proc.pid)
            main = rss_kib(gw.proc.pid)
            return {"main_kib": main, "tree_kib": sum(map(rss_kib, pids)), "processes": len(pids)}

        before = reading()
        limit = args.rss_max_seconds
        log(f"RSS: {args.rss_requests} requests at c={conc} (at most {limit:g}s)")
        res = load(conc, limit, max_requests=args.rss_requests)
        time.sleep(1)
        self.results["rss"] = {
            "requests": res.requests,
            "errors": res.errors,
            "seconds": res.duration_s,
            "rps": res.rps,
            "before": before,
            "after": reading(),
        }

    def profile(
        self, gw: Gateway, case: Case, env: dict[str, str], key: str, headers: dict[str, str]
    ) -> dict[str, Any]:
        """A pass of its own at the largest concurrency, so the sampler slows no measured pass."""
        args, conc = self.args, max(self.concurrencies)
        load = self.loader(gw.chat_url, False, key, headers)
        out: dict[str, Any] = {"concurrency": conc}
        log(f"profiling the gateway under c={conc} for {args.duration:g}s (py-spy)")
        summary, rps, spy_log = record_pyspy(
            self.stack.procs,
            gw.proc.pid,
            self.tmp,
            lambda: load(conc, args.duration).rps,
            max_seconds=args.duration + 60,
        )
        if summary is not None:
            out.update(tool="py-spy record --nonblocking --rate 250", rps=rps, summary=summary)
            return out
        out["pyspy_failure"] = spy_log
        log(f"py-spy failed, falling back to cProfile: {spy_log.strip()[-300:]}")
        # Restart the gateway under cProfile: in-process and deterministic, but much slower.
        self.stack.procs.stop(gw.proc, grace=15)
        prof = self.tmp / "gateway.prof"
        argv = [str(VENV_BIN / "python"), "-m", "cProfile", "-o", str(prof), args.sluice, "serve"]
        gw2 = self.stack.start_gateway(f"{case.name}-cprofile", env, argv=argv)
        try:
            rps = self.loader(gw2.chat_url, False, key, headers)(conc, args.duration).rps
        finally:
            # SIGINT: uvicorn shuts down and re-raises it, so cProfile's `finally` writes the
            # profile (a re-raised SIGTERM would kill the process before that).
            self.stack.procs.stop(gw2.proc, sig=signal.SIGINT, grace=30)
        tool = "cProfile (fallback: py-spy failed)"
        if prof.exists():
            out.update(tool=tool, rps=rps, summary=summarise_cprofile(prof))
        else:
            out.update(tool=tool, rps=rps, summary="cProfile wrote nothing (unclean exit).")
        return out


def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    def version(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"

    def first_line(argv: list[str]) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError, IndexError):
            res = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (res.stdout + res.stderr).strip().splitlines()[0]
        return "unknown"

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    packages = ("litestar", "uvicorn", "aiohttp", "uvloop", "httptools", "msgspec", "sluice")
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {p: version(p) for p in packages},
        "nginx": first_line([args.nginx, "-v"]),
        "wrk": first_line([args.wrk, "-v"]),
        "commit": commit if re.fullmatch(r"[0-9a-f]{4,40}", commit) else "none yet",
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def client_env(args: argparse.Namespace) -> dict[str, str]:
    """The gateway's environment for every case: the chosen clients, then --gateway-env."""
    env = {"SLUICE_UPSTREAM_CLIENT": args.client, "SLUICE_BUDGET_REDIS_CLIENT": args.redis}
    env.update(item.partition("=")[::2] for item in args.gateway_env)
    return env


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    a = p.add_argument
    a("--duration", type=float, default=10.0, help="seconds per wrk run (default 10)")
    a("--warmup", type=float, default=3.0, help="seconds of warm-up per gateway (default 3)")
    a("--repeat", type=int, default=1, help="runs per measurement; the best req/s is kept")
    a("--concurrency", default="1,32", help="comma-separated connection counts (default 1,32)")
    a("--wrk-threads", type=int, default=2, help="wrk threads when c > 1 (default 2; c=1: 1)")
    a("--cases", default="default", help="`default`, `all`, or names: chat,prompt-header")
    a("--ttfb-requests", type=int, default=300, help="streamed requests per TTFB target")
    a("--rss-requests", type=int, default=100_000, help="requests in the RSS run; 0 skips it")
    a("--rss-max-seconds", type=float, default=300.0, help="time bound of the RSS run")
    a("--profile", action="store_true", help="profile the gateway under c=32 non-stream load")
    a("--stall-probe", action="store_true", help="run the gateway under bench/loopstall.py")
    a("--direct-only", action="store_true", help="measure only the upstream, no gateway")
    a("--gateway-wait", type=float, default=60.0, help="seconds to wait for /healthz")
    a("--gateway-env", action="append", default=[], metavar="KEY=VALUE", help="for every case")
    a("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/sluice_bench")
    a("--redis-url", default="redis://127.0.0.1:6379/15", help="'' runs without Redis")
    a("--client", choices=("lean", "aiohttp"), default="lean", help="SLUICE_UPSTREAM_CLIENT")
    a("--redis", choices=("resp", "redis-py"), default="resp", help="SLUICE_BUDGET_REDIS_CLIENT")
    a("--keep-db", action="store_true", help="do not drop and re-create the bench database")
    a("--output", type=Path, default=BENCH / "results" / "latest.md")
    a("--keep-temp", action="store_true", help="keep bench/.run/<run>/ (logs, nginx prefix)")
    a("--check-targets", action="store_true", help="exit 1 when a target is not met")
    a("--serve-upstream", type=float, default=0, metavar="SECONDS", help="only run nginx")
    a("--sluice", default=str(VENV_BIN / "sluice"))
    a("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    a("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    return p.parse_args(argv)


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in (args.nginx, args.wrk):
        if not Path(tool).exists():
            print(f"{tool} not found: run `bash bench/setup.sh` first", file=sys.stderr)
            return 2
    # SIGINT too: a shell's background job inherits it ignored, and `kill -INT` must stop us.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    procs = Processes()
    run_root = BENCH / ".run"  # git-ignored
    with contextlib.suppress(OSError):
        run_root.mkdir(exist_ok=True)
    tmp = Path(
        tempfile.mkdtemp(
            prefix=time.strftime("%Y%m%d-%H%M%S-"),
            dir=run_root if os.access(run_root, os.W_OK) else None,
        )
    )
    try:
        bench = Bench(args, procs, tmp)
        if args.serve_upstream:
            bench.stack.start_upstream()
            print(f"canned upstream: {UPSTREAM_JSON} (JSON), {UPSTREAM_SSE} (SSE)", flush=True)
            deadline = time.monotonic() + args.serve_upstream
            while time.monotonic() < deadline:
                time.sleep(0.5)
            return 0
        results = bench.run()
        markdown, targets_met = render_markdown(results)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        other = BENCH / "results" / "other-benchmarks.md"
        if other.exists():
            markdown = markdown.rstrip() + "\n\n" + other.read_text()
        args.output.write_text(markdown)
        as_json = args.output.with_suffix(".json")
        as_json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        log(f"wrote {args.output} and {as_json.name}")
        print(markdown)
        if results.get("gateway_skipped") and not args.direct_only:
            return 3
        if any(c.get("error") for c in results["cases"]):
            return 1
        return 1 if args.check_targets and not targets_met else 0
    except BenchError as exc:
        log(f"failed: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop_all()
        if args.keep_temp:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
