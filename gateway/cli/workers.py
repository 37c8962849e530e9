"""`sluice serve --workers N`: N gateway processes on one port, and the supervisor over them.

Each worker is a process of its own (spawned, not forked: no event loop, engine or Redis pool of
the parent's crosses over) that builds the app and runs its lifespan itself: its own database
engine, Redis pool, request-log buffer and background tasks. Every worker binds its own socket to
the port with SO_REUSEPORT, so the kernel spreads new connections evenly over the workers.
uvicorn's own supervisor (`--workers`) shares one listening socket instead, and the worker that
wakes first takes the whole burst of pending connections: 4 and 28 of 32 connections in
bench/results/workers.md, against 16 and 16 here. A worker's socket starts listening only once
its lifespan is up, so a restarting worker is sent nothing until it can answer.

The supervisor (the `sluice serve` process) starts the workers, restarts one that dies (with a
growing pause when it dies young, so a broken worker does not spin), and on SIGTERM or SIGINT
sends SIGTERM to every worker and waits: each stops taking connections, finishes its requests
and flushes its request log before it exits. Workers get SIGTERM too if the supervisor itself
dies (PR_SET_PDEATHSIG), so none outlives it.

/metrics sums the workers: the supervisor hands them a fresh PROMETHEUS_MULTIPROC_DIR, so
prometheus_client writes every worker's numbers there and a scrape, whichever worker answers it,
reads them all (gateway/metrics.py).

Only the standard library is imported at the top: the supervisor stays light, and each worker
imports the app itself.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess
from pathlib import Path
from types import FrameType
from typing import Any

from gateway.logformat import configure_logging

__all__ = ["UVICORN_OPTIONS", "Supervisor", "check_port_free", "reuse_port_socket"]

log = logging.getLogger("sluice")

UVICORN_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "access_log": False,
    "log_config": None,  # uvicorn's records go through configure_logging's escaping formatter
    "log_level": "warning",
    "timeout_graceful_shutdown": 15,
    "backlog": 4096,
}
"""How `sluice serve` runs uvicorn, in one process or in each worker."""

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
START_TIMEOUT = 180.0
"""Seconds a worker may take to import and start its lifespan on a loaded machine."""
STOP_TIMEOUT = 60.0
"""Seconds a worker may take to stop: uvicorn's 15 s for open requests, then the log flush."""
YOUNG = 10.0
"""A worker that dies sooner than this after its start is restarted after a growing pause."""
MAX_PAUSE = 30.0


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port that other SO_REUSEPORT sockets may share; not listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def check_port_free(host: str, port: int) -> str | None:
    """None if the workers can have host:port to themselves, else why not."""
    try:
        reuse_port_socket(host, port).close()
    except OSError as exc:
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    # A bind succeeds next to another `sluice serve --workers` of the same user (SO_REUSEPORT
    # on both sides), which would then share the port with us: look for a listener too.
    wildcard = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104 (read, not bound)
    target = wildcard.get(host, host)
    try:
        with socket.create_connection((target, port), timeout=1):
            return f"cannot listen on {host}:{port}: another server already answers there"
    except OSError:
        return None


@dataclass(slots=True)
class _Worker:
    index: int
    process: SpawnProcess
    ready: Connection
    """Readable once the worker serves (it sends one byte), or at EOF if it died before."""
    started_at: float
    is_ready: bool = False


class Supervisor:
    """Runs `count` workers on host:port until SIGTERM or SIGINT; `run()` is the exit code."""

    def __init__(self, count: int, host: str, port: int) -> None:
        self.count = count
        self.host = host
        self.port = port
        self._context = multiprocessing.get_context("spawn")
        self._workers: dict[int, _Worker] = {}
        self._pause: dict[int, float] = {}
        self._restart_at: dict[int, float] = {}
        self._stopping = False
        self._signal = 0
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)

    def run(self) -> int:
        handled = (signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        metrics_dir = tempfile.mkdtemp(prefix="sluice-metrics-")
        os.environ[MULTIPROC_DIR] = metrics_dir  # the spawned workers inherit it
        try:
            for index in range(self.count):
                self._start(index)
            if not self._wait_until_ready():
                return 0 if self._stopping else 1
            pids = ", ".join(str(w.process.pid) for w in self._workers.values())
            log.info("%d workers ready (pids %s)", self.count, pids)
            self._watch()
            return 0
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.environ.pop(MULTIPROC_DIR, None)
            shutil.rmtree(metrics_dir, ignore_errors=True)
            os.close(self._wake_read)
            os.close(self._wake_write)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only flags and a byte here; the main loop does the logging and the stopping.
        self._signal = self._signal or signum
        self._stopping = True
        try:
            os.write(self._wake_write, b"x")
        except BlockingIOError:  # the pipe is full of earlier wake-ups: awake anyway
            pass

    def _start(self, index: int) -> None:
        receive, send = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_worker_main,
            args=(index, self.host, self.port, send, os.getpid()),
            name=f"sluice-worker-{index}",
        )
        process.start()
        send.close()  # the worker holds the only sending end: EOF means it died
        self._workers[index] = _Worker(index, process, receive, time.monotonic())

    def _wait_until_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while not self._stopping:
            waiting = [w for w in self._workers.values() if not w.is_ready]
            if not waiting:
                return True
            if time.monotonic() > deadline:
                log.error("workers did not start within %.0f s; stopping", START_TIMEOUT)
                return False
            wait([w.ready for w in waiting] + [self._wake_read], timeout=1.0)
            for worker in waiting:
                if self._took_ready(worker):
                    continue
                if not worker.process.is_alive():
                    log.error(
                        "worker %d (pid %s) exited with code %s before it was ready; stopping "
                        "(its log lines are above)",
                        worker.index,
                        worker.process.pid,
                        worker.process.exitcode,
                    )
                    return False
        return False

    def _took_ready(self, worker: _Worker) -> bool:
        if worker.is_ready or not worker.ready.poll():
            return worker.is_ready
        try:
            worker.ready.recv_bytes()
        except EOFError:
            return False  # it died; its sentinel says so
        worker.is_ready = True
        return True

    def _watch(self) -> None:
        while not self._stopping:
            now = time.monotonic()
            for index, when in list(self._restart_at.items()):
                if when <= now:
                    del self._restart_at[index]
                    self._start(index)
            waits: list[Any] = [self._wake_read]
            for worker in self._workers.values():
                waits.append(worker.process.sentinel)
                if not worker.is_ready:
                    waits.append(worker.ready)
            timeout = min((t - now for t in self._restart_at.values()), default=5.0)
            wait(waits, timeout=max(timeout, 0.0))
            for index, worker in list(self._workers.items()):
                if not worker.is_ready and self._took_ready(worker):
                    log.info("worker %d (pid %s) ready", index, worker.process.pid)
                if not worker.process.is_alive() and not self._stopping:
                    self._reap(worker)

    def _reap(self, worker: _Worker) -> None:
        """A worker died on its own: forget its live metrics and start another after a pause."""
        worker.process.join()
        worker.ready.close()
        del self._workers[worker.index]
        pid = worker.process.pid
        if pid is not None:
            # A dead worker's gauges (its log buffer depth...) describe nothing any more; its
            # counters and histograms stay, so the sums never go backwards.
            for gauge in Path(os.environ[MULTIPROC_DIR]).glob(f"gauge_*_{pid}.db"):
                gauge.unlink(missing_ok=True)
        lived = time.monotonic() - worker.started_at
        young = lived < YOUNG or not worker.is_ready
        pause = min(self._pause.get(worker.index, 0.5) * 2, MAX_PAUSE) if young else 0.0
        self._pause[worker.index] = pause if young else 0.5
        log.warning(
            "worker %d (pid %s) exited with code %s after %.0f s; starting another%s",
            worker.index,
            pid,
            worker.process.exitcode,
            lived,
            f" in {pause:.0f} s" if pause else "",
        )
        self._restart_at[worker.index] = time.monotonic() + pause

    def _stop_all(self) -> None:
        workers = list(self._workers.values())
        reason = signal.Signals(self._signal).name if self._signal else "stopping"
        log.info("%s: stopping %d workers", reason, len(workers))
        for worker in workers:
            if worker.process.is_alive() and worker.process.pid is not None:
                os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for worker in workers:
            worker.process.join(max(deadline - time.monotonic(), 0.0))
            if worker.process.is_alive():
                log.error(
                    "worker %d (pid %s) did not stop within %.0f s; killing it (rows still in its "
                    "request log buffer are lost)",
                    worker.index,
                    worker.process.pid,
                    STOP_TIMEOUT,
                )
                worker.process.kill()
                worker.process.join()
            worker.ready.close()
        self._workers.clear()
        log.info("all workers stopped")


def _die_with_parent(parent_pid: int) -> None:
    """SIGTERM this worker when the supervisor dies, however it dies (Linux only)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent_pid:  # it died before the line above took effect
        sys.exit(0)


def _worker_main(index: int, host: str, port: int, ready: Connection, parent_pid: int) -> None:
    """One worker: the app and its lifespan under uvicorn, on its own SO_REUSEPORT socket."""
    _die_with_parent(parent_pid)
    configure_logging()
    # The heavy imports live here, in the worker, so the supervisor stays light; the parent
    # already checked the settings and SLUICE_CONFIG and migrated the database before forking.
    import uvicorn

    from gateway.app import create_app
    from gateway.settings import load_settings

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # the lifespan is up and the socket listens
                log.info("worker %d serving (pid %d)", index, os.getpid())
                ready.send_bytes(b"1")

    sock = reuse_port_socket(host, port)
    server = Server(uvicorn.Config(create_app(load_settings()), **UVICORN_OPTIONS))
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(3)  # uvicorn's own code for a lifespan that failed to start
