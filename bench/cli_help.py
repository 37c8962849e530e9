#!/usr/bin/env python3
"""How long `sluice --help` and every subcommand's `--help` take, as a person runs them.

    .venv/bin/python bench/cli_help.py [--runs 15] [--sluice .venv/bin/sluice] [--baseline PATH]

Runs each `sluice ... --help` `--runs` times as a fresh process (the installed script, so the
interpreter's start-up counts, as it does for a person) and reports per command the median and
the slowest wall time, and the median CPU time (steadier than wall time on a busy machine).
`--baseline` times another install's `sluice --help` the same way (e.g. a checkout from before
the CLI was split) for comparison. The command list comes from the parser itself, so a new
subcommand is measured without editing this file. Results go to bench/results/cli_help.md.
Target: every help under 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.5


def _commands() -> list[list[str]]:
    sys.path.insert(0, str(ROOT))
    from gateway.cli import build_parser

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> list[list[str]]:
        found = [prefix]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.extend(walk(sub, [*prefix, name]))
        return found

    return walk(build_parser(), [])


def _time(sluice: str, command: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of each run: on a busy VM the CPU time is the
    steadier figure, the wall time is what a person waits."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sluice, *command, "--help"], capture_output=True, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def _bare_python(runs: int) -> float:
    """The interpreter's own start-up, the floor under every figure above."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--sluice", default=str(ROOT / ".venv" / "bin" / "sluice"))
    parser.add_argument("--baseline", help="another install's sluice, timed for --help only")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "cli_help.md"))
    args = parser.parse_args()

    rows = []
    for command in _commands():
        walls, cpus = _time(args.sluice, command, args.runs)
        rows.append((" ".join(["sluice", *command, "--help"]), walls, cpus))
        print(f"{rows[-1][0]}: median {statistics.median(walls) * 1000:.0f} ms", file=sys.stderr)
    worst_median = max(statistics.median(walls) for _, walls, _ in rows)
    lines = [
        "# `sluice --help` and every subcommand's help",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({platform.machine()}, Python {platform.python_version()}) with "
        f"`.venv/bin/python bench/cli_help.py --runs {args.runs}`: each command run "
        f"{args.runs} times as a fresh process (interpreter start-up included), on a shared "
        f"2-core VM (load average {os.getloadavg()[0]:.1f} at the end; a bare "
        f"`python -c pass` took {_bare_python(args.runs) * 1000:.0f} ms median meanwhile).",
        "",
        "| command | median wall ms | slowest wall ms | median CPU ms |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{name}` | {statistics.median(walls) * 1000:.0f} | {max(walls) * 1000:.0f} "
        f"| {statistics.median(cpus) * 1000:.0f} |"
        for name, walls, cpus in rows
    ]
    verdict = "met" if worst_median < TARGET_S else "**not met**"
    lines += [
        "",
        f"Target: every help under {TARGET_S} s (median wall time): {verdict} "
        f"(slowest median {worst_median:.3f} s).",
    ]
    if args.baseline:
        walls, cpus = _time(args.baseline, [], args.runs)
        lines += [
            "",
            f"Before the split (`{args.baseline} --help`, the CLI importing the whole app): "
            f"median wall {statistics.median(walls) * 1000:.0f} ms, slowest "
            f"{max(walls) * 1000:.0f} ms, median CPU {statistics.median(cpus) * 1000:.0f} ms.",
        ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0 if worst_median < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
