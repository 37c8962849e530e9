"""The process's heap once started: start-up's objects frozen out of later collections."""

from __future__ import annotations

import gc

__all__ = ["settle_heap"]


# Young-generation threshold while serving (CPython's default is 700). Nearly everything a
# request makes dies by reference counting, yet at 700 the collector ran ~55 times a second
# under load and promoted in-flight requests' objects towards the full collections. At 10,000
# GC time fell from ~390 ms to 0-136 ms per 8 s run at c=32, with no full collection in a run
# (bench/results/tail.md).
YOUNG_THRESHOLD = 10_000


def settle_heap() -> None:
    """Keep what start-up built out of every later garbage collection; call once started.

    A full (generation 2) collection walks every tracked object, and after start-up that is
    some 227k objects (modules, classes, functions, Litestar's and SQLAlchemy's state) living
    as long as the process: under load each walk stopped the event loop for 120-710 ms, every
    few seconds, and made the p99 (bench/results/tail.md). Collect once, then freeze the
    survivors into the permanent generation: later collections only walk objects made while
    serving, some 10-15k.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
