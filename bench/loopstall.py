"""Run `sluice serve` with a probe that catches event-loop stalls and says what they were.

    .venv/bin/python bench/loopstall.py REPORT.json .venv/bin/sluice serve

A profiler's totals cannot tell a p99 from a p50: 1% of the time spent in one 150 ms block and
1% spread over a thousand 0.15 ms calls look the same. This probe measures the blocks
themselves, in the gateway's own process:

- a heartbeat callback on the event loop every 2 ms records how late it ran (the loop lag);
- a watchdog thread, when the heartbeat is more than 10 ms overdue, samples the loop thread's
  Python stack every 2 ms (it gets the GIL at the interpreter's switch interval, 5 ms, so a
  pure-Python stall is seen every ~5 ms), and each such stall keeps its stacks;
- `gc.callbacks` time every collection by generation (no thread runs during one, so a stall
  made of a collection shows as a GC pause instead of stacks).

At exit (uvicorn's graceful shutdown on SIGTERM) it writes REPORT.json: the heartbeat lags,
the stalls with their wall-clock start, length, GC time inside them and stacks, and the GC
pauses. `summarise()` turns the part of it inside a time window (one measured run) into
markdown; bench/run.py does that for `--stall-probe`. Only for benchmarks: the probe costs a
callback every 2 ms and a thread.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import json
import re
import runpy
import sys
import threading
import time
from pathlib import Path
from typing import Any

BEAT_S = 0.002
STALL_S = 0.010
MAX_STALLS = 20_000
MAX_STACK_SAMPLES_PER_STALL = 200


class Probe:
    def __init__(self) -> None:
        self.last_beat = time.perf_counter()
        self.last_cpu = time.thread_time()
        self.lags_ms: list[float] = []
        self.stalls: list[dict[str, Any]] = []
        self.gc_pauses: list[tuple[float, int, float]] = []  # (wall start, generation, ms)
        self._gc_start = 0.0
        self.gen2_sizes: list[tuple[float, int, float]] = []  # (wall start, objects, ms)
        self.gen2_types: dict[str, int] = {}
        self._gc_in_stall_ms = 0.0
        self._samples: list[list[str]] = []
        self._loop_thread = threading.get_ident()
        self._lock = threading.Lock()
        self._offset = time.time() - time.perf_counter()  # perf_counter -> wall clock

    # --- on the event loop ---

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop_thread = threading.get_ident()
        self.last_beat, self.last_cpu = time.perf_counter(), time.thread_time()
        loop.call_later(BEAT_S, self._beat, loop, self.last_beat + BEAT_S)
        threading.Thread(target=self._watch, name="loopstall-watchdog", daemon=True).start()

    def _beat(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        now = time.perf_counter()
        cpu = time.thread_time()
        lag = now - due
        self.lags_ms.append(lag * 1000)
        if lag > STALL_S and len(self.stalls) < MAX_STALLS:
            with self._lock:
                samples, self._samples = self._samples, []
                gc_ms, self._gc_in_stall_ms = self._gc_in_stall_ms, 0.0
            self.stalls.append(
                {
                    "start": self._offset + self.last_beat,
                    "ms": (now - self.last_beat - BEAT_S) * 1000,
                    "gc_ms": gc_ms,
                    # The loop thread's own CPU time in the stall: much less than "ms" means
                    # it was off the CPU (other processes, or waiting for the GIL).
                    "cpu_ms": (cpu - self.last_cpu) * 1000,
                    "stacks": samples,
                }
            )
        else:
            with self._lock:
                self._samples.clear()
                self._gc_in_stall_ms = 0.0
        self.last_beat, self.last_cpu = now, cpu
        loop.call_later(BEAT_S, self._beat, loop, now + BEAT_S)

    # --- the watchdog thread ---

    def _watch(self) -> None:
        while True:
            time.sleep(BEAT_S)
            if time.perf_counter() - self.last_beat < BEAT_S + STALL_S:
                continue
            frame = sys._current_frames().get(self._loop_thread)
            if frame is None:
                continue
            stack = []
            while frame is not None:
                code = frame.f_code
                stack.append(f"{code.co_qualname} ({code.co_filename})")
                frame = frame.f_back
            with self._lock:
                if len(self._samples) < MAX_STACK_SAMPLES_PER_STALL:
                    self._samples.append(stack[::-1])  # outermost first

    # --- gc.callbacks (run on whichever thread collects: the loop's, nearly always) ---

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_start = now
            return
        ms = (now - self._gc_start) * 1000
        self.gc_pauses.append((self._offset + self._gc_start, info["generation"], ms))
        if now - self.last_beat > BEAT_S:
            self._gc_in_stall_ms += ms
        if info["generation"] == 2:
            # What a full collection walks besides the frozen heap, and once, of what types.
            survivors = gc.get_objects(2)
            self.gen2_sizes.append((self._offset + self._gc_start, len(survivors), ms))
            if not self.gen2_types and gc.get_freeze_count() and len(self.gen2_sizes) >= 3:
                counts: dict[str, int] = {}
                for obj in survivors:
                    name = type(obj).__qualname__
                    counts[name] = counts.get(name, 0) + 1
                self.gen2_types = dict(sorted(counts.items(), key=lambda kv: -kv[1])[:12])
            del survivors

    def write(self, path: Path) -> None:
        report = {
            "beat_ms": BEAT_S * 1000,
            "stall_ms": STALL_S * 1000,
            "lags_ms": [round(x, 3) for x in self.lags_ms],
            "stalls": self.stalls,
            "gc_pauses": self.gc_pauses,
            "gc_frozen": gc.get_freeze_count(),
            "gen2_sizes": self.gen2_sizes,
            "gen2_types": self.gen2_types,
            "gc_threshold": gc.get_threshold(),
        }
        path.write_text(json.dumps(report))


def install(report: Path) -> Probe:
    import uvicorn.server

    probe = Probe()
    gc.callbacks.append(probe.on_gc)
    startup = uvicorn.server.Server.startup

    async def startup_with_probe(self: Any, *args: Any, **kwargs: Any) -> None:
        await startup(self, *args, **kwargs)
        probe.start(asyncio.get_running_loop())

    uvicorn.server.Server.startup = startup_with_probe  # type: ignore[method-assign]
    atexit.register(probe.write, report)
    return probe


# --- the summary, for bench/run.py ---

_SITE = re.compile(r"\(/[^()]*?/site-packages/")
_STDLIB = re.compile(r"\(/[^()]*?/lib/python3\.\d+/")


def _short(frame: str, repo: str) -> str:
    frame = _SITE.sub("(", frame).replace(f"({repo}/", "(")
    return _STDLIB.sub("(stdlib/", frame)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _on_cpu(stalls: list[dict[str, Any]]) -> str:
    wall = sum(s["ms"] for s in stalls)
    return f"{100 * sum(s['cpu_ms'] for s in stalls) / wall:.0f}%" if wall else "–"


def summarise(path: Path, start: float, end: float, repo: str, top: int = 15) -> str:
    """Markdown for the stalls and GC pauses between wall-clock `start` and `end`."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return f"The stall probe wrote no report ({exc})."
    stalls = [s for s in data["stalls"] if start <= s["start"] <= end]
    pauses = [p for p in data["gc_pauses"] if start <= p[0] <= end]
    window = max(end - start, 1e-9)
    lengths = [s["ms"] for s in stalls]
    big = [s for s in stalls if s["ms"] >= 20]
    out = [
        f"Window {window:.1f} s; heartbeat every {data['beat_ms']:g} ms, a stall is a beat "
        f">{data['stall_ms']:g} ms late. GC: threshold {tuple(data['gc_threshold'])}, "
        f"{data['gc_frozen']} objects frozen.",
        "",
        "| stalls >10 ms | >20 ms | >50 ms | >100 ms | p50 ms | max ms | stalled % of time "
        "| of which GC ms | loop thread on CPU in stalls >20 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {len(stalls)} | {len(big)} | {sum(x >= 50 for x in lengths)} "
        f"| {sum(x >= 100 for x in lengths)} | {_pct(lengths, 0.5):.1f} "
        f"| {max(lengths, default=0):.1f} | {100 * sum(lengths) / 1000 / window:.1f} "
        f"| {sum(s['gc_ms'] for s in stalls):.0f} | {_on_cpu(big)} |",
        "",
    ]
    longest = sorted(stalls, key=lambda s: -s["ms"])[:5]
    if longest:
        out.append(
            "Longest stalls (ms / loop thread CPU ms / GC ms): "
            + ", ".join(f"{s['ms']:.0f} / {s['cpu_ms']:.0f} / {s['gc_ms']:.0f}" for s in longest)
            + "."
        )
        out.append("")
    by_gen: dict[int, list[float]] = {}
    for _, gen, ms in pauses:
        by_gen.setdefault(gen, []).append(ms)
    out += [
        "| GC generation | collections | total ms | p99 ms | max ms |",
        "|---:|---:|---:|---:|---:|",
    ]
    for gen in sorted(by_gen):
        ms = by_gen[gen]
        out.append(f"| {gen} | {len(ms)} | {sum(ms):.0f} | {_pct(ms, 0.99):.2f} | {max(ms):.2f} |")
    out.append("")
    sizes = [n for t, n, _ in data.get("gen2_sizes", []) if start <= t <= end]
    if sizes:
        out.append(
            f"Objects in generation 2 after each full collection: {min(sizes):,} to "
            f"{max(sizes):,} (the frozen ones not counted)."
        )
        if data["gen2_types"]:
            out.append(
                "Most common types there (once, after start-up): "
                + ", ".join(f"{name} {n:,}" for name, n in data["gen2_types"].items())
                + "."
            )
        out.append("")

    # Stacks of the stalls of 20 ms or more: the frames they were in, weighted by samples.
    leaf: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for stall in big:
        for stack in stall["stacks"]:
            frames = [_short(f, repo) for f in stack]
            total += 1
            project = [f for f in frames if "gateway/" in f.rpartition("(")[2]]
            key = project[-1] if project else frames[-1]
            leaf[key] = leaf.get(key, 0) + 1
            for f in set(frames):
                inclusive[f] = inclusive.get(f, 0) + 1
    if not total:
        out.append("No stacks sampled inside stalls of 20 ms or more.")
        return "\n".join(out)
    out += [
        f"{total} stack samples inside the {len(big)} stalls of 20 ms or more.",
        "",
        "Innermost project frame (or the leaf when none) of each sample:",
        "",
        "| % samples | frame |",
        "|---:|---|",
    ]
    for frame, n in sorted(leaf.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"| {100 * n / total:.0f} | `{frame}` |")
    out += ["", "Frames by inclusive samples:", "", "| % samples | frame |", "|---:|---|"]
    for frame, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"| {100 * n / total:.0f} | `{frame}` |")
    return "\n".join(out)


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    install(Path(sys.argv[1]))
    script = sys.argv[2]
    sys.argv = sys.argv[2:]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
