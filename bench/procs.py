"""Child processes of the benchmark (own process group, always stopped) and /proc readings.

Every child gets its own session (so a Ctrl-C in the terminal reaches only run.py, which then
stops the children in order) and PR_SET_PDEATHSIG, so even a SIGKILLed run.py takes its nginx
and gateways down with it. Stopping signals the child's own process group, which holds only
that child and whatever it spawned (nginx's worker, uvicorn's workers).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def exited(proc: subprocess.Popen[Any]) -> bool:
    """True once the child has exited, without reaping it (its pid stays reserved)."""
    if proc.returncode is not None:
        return True
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


class Processes:
    """Tracks the children run.py started; `stop_all()` ends every one still running."""

    def __init__(self) -> None:
        self._live: list[tuple[str, subprocess.Popen[Any]]] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[Any]:
        log_file = None
        if log is not None:
            log_file = open(log, "ab")  # noqa: SIM115 - handed to the child, closed below
            stdout = stdout if stdout is not None else log_file
            stderr = stderr if stderr is not None else subprocess.STDOUT
        try:
            proc = subprocess.Popen(
                list(argv),
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            if log_file is not None:
                log_file.close()
        self._live.append((name, proc))
        return proc

    def stop(
        self, proc: subprocess.Popen[Any], *, sig: int = signal.SIGTERM, grace: float = 10.0
    ) -> int | None:
        """Signal the child's process group, wait up to `grace` s, then SIGKILL what is left."""
        try:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, sig)
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline and not exited(proc):
                    time.sleep(0.05)
                # The leader is not reaped yet, so its pid (the group id) cannot have been reused.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        finally:
            self._live = [(n, p) for n, p in self._live if p is not proc]
        return proc.returncode

    def forget(self, proc: subprocess.Popen[Any]) -> None:
        """Drop a child that has been waited for (e.g. with communicate())."""
        self._live = [(n, p) for n, p in self._live if p is not proc]

    def stop_all(self) -> None:
        # Newest first: gateways and load generators before the upstream.
        for _name, proc in reversed(list(self._live)):
            self.stop(proc, grace=10.0)


# --- readings from /proc ---------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    kids = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def rss_kib(pid: int) -> int:
    """VmRSS from /proc/PID/status, in KiB (0 if the process is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by these processes."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def machine_busy_seconds() -> float:
    """CPU time all CPUs have spent busy since boot (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU time of this process and of its children that have been waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
