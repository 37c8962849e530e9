"""Where the gateway spends its time under load: py-spy, or cProfile when py-spy cannot attach."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from procs import Processes, exited
from stack import REPO, VENV_BIN, log, tail


def ensure_pyspy() -> Path | None:
    """The venv's py-spy, installed from PyPI if missing; None if that fails."""
    exe = VENV_BIN / "py-spy"
    if exe.exists():
        return exe
    log("installing py-spy into the venv")
    res = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "pip", "install", "-q", "py-spy"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return exe if res.returncode == 0 and exe.exists() else None


def record_pyspy(
    procs: Processes, pid: int, out_dir: Path, run_load: Callable[[], float], max_seconds: float
) -> tuple[str | None, float | None, str]:
    """Sample `pid` (and its children) with py-spy while `run_load()` runs.
    Returns (markdown summary or None on failure, req/s while profiled, py-spy's log tail)."""
    exe = ensure_pyspy()
    if exe is None:
        return None, None, "py-spy could not be installed"
    raw, logf = out_dir / "pyspy.txt", out_dir / "pyspy.log"
    argv = [str(exe), "record", "--pid", str(pid), "--rate", "250", "--format", "raw"]
    argv += ["--output", str(raw), "--nonblocking", "--subprocesses"]
    argv += ["--duration", str(int(max_seconds))]
    spy = procs.start("py-spy", argv, log=logf)
    time.sleep(1.0)  # let it attach
    try:
        rps = run_load()
    finally:
        if not exited(spy):
            os.kill(spy.pid, signal.SIGINT)  # py-spy writes its output on Ctrl-C
        procs.stop(spy, sig=signal.SIGINT, grace=20)
    if raw.exists() and raw.stat().st_size > 0:
        return summarise_pyspy_raw(raw), rps, tail(logf, 3)
    return None, rps, tail(logf, 10)


PROJECT_PACKAGES = ("gateway/", "admin/", "evaluators/")


def summarise_pyspy_raw(path: Path, top: int = 25) -> str:
    """py-spy's raw format is collapsed stacks, one per line: `frame;frame;...;leaf COUNT`."""
    own: dict[str, int] = {}
    own_by_package: dict[str, int] = {}
    project_inclusive: dict[str, int] = {}
    total = 0
    line_no = re.compile(r":\d+\)$")
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [
            line_no.sub(")", short_frame(f))
            for f in stack.split(";")
            if not f.startswith("process ")
        ]
        if not frames:
            continue
        total += n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        package = frame_package(frames[-1])
        own_by_package[package] = own_by_package.get(package, 0) + n
        for f in set(frames):
            if f.rpartition("(")[2].startswith(PROJECT_PACKAGES):
                project_inclusive[f] = project_inclusive.get(f, 0) + n
    if not total:
        return "py-spy recorded no samples."

    def table(title: str, counts: dict[str, int], what: str = "function") -> list[str]:
        rows = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        head = [title, "", f"| % samples | {what} |", "|---:|---|"]
        return head + [f"| {100 * c / total:.1f} | `{f}` |" for f, c in rows] + [""]

    out = [
        f"{total} samples of Python stacks (idle time not sampled). Time in C code (uvloop,",
        "httptools, the kernel) shows up in the Python frame that called it, e.g. `Runner.run`",
        "for the event loop itself.",
        "",
    ]
    out += table("Own time by package (leaf frames):", own_by_package, "package")
    out += table("Top functions by own time (leaf frames):", own)
    out += table("The project's functions by inclusive time:", project_inclusive)
    return "\n".join(out)


def frame_package(frame: str) -> str:
    """`f (litestar/routes/http.py)` -> `litestar`, `f (contextlib.py)` -> `contextlib`."""
    where = frame.rpartition("(")[2].rstrip(")")
    parts = where.split("/")
    if parts[0] == "stdlib" and len(parts) > 1:
        return f"stdlib {parts[1].removesuffix('.py')}"
    return parts[0].removesuffix(".py") or "?"


def short_frame(frame: str) -> str:
    """Trim site-packages, stdlib and repo prefixes from a `func (path:line)` frame."""
    frame = re.sub(r"\(/[^()]*?/site-packages/", "(", frame)
    frame = frame.replace(f"({REPO}/", "(")
    return re.sub(r"\(/[^()]*?/lib/python3\.\d+/", "(stdlib/", frame)


def summarise_cprofile(path: Path, top: int = 25) -> str:
    import pstats

    stats = pstats.Stats(str(path))
    entries = stats.stats  # type: ignore[attr-defined]
    rows = sorted(entries.items(), key=lambda kv: -kv[1][2])[:top]  # by own time
    total = sum(v[2] for v in entries.values()) or 1.0
    out = [
        "Top functions by own time (cProfile tottime):",
        "",
        "| % own time | calls | own s | cumulative s | function |",
        "|---:|---:|---:|---:|---|",
    ]
    for (file, line, func), (_cc, calls, own, cumulative, _callers) in rows:
        where = short_frame(f"({file}:{line})").strip("()")
        out.append(
            f"| {100 * own / total:.1f} | {calls} | {own:.3f} | {cumulative:.3f} "
            f"| `{func} ({where})` |"
        )
    return "\n".join(out)
