"""Once started, the gateway keeps its start-up heap out of later garbage collections."""

from __future__ import annotations

import gc

from gateway.core import CorePlugin
from gateway.heap import YOUNG_THRESHOLD, settle_heap
from tests.conftest import RunningGateway


def test_settle_heap_keeps_what_exists_out_of_later_collections() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the cyclic collector could ever free it

    kept = Node()
    settle_heap()
    assert gc.get_freeze_count() > 0
    assert not any(obj is kept for obj in gc.get_objects())
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD


def test_a_started_gateway_has_settled_its_heap(gateway: RunningGateway) -> None:
    # Made by start-up, so frozen: no full collection walks the core and all it holds.
    core = gateway.plugin(CorePlugin).core.value
    assert not any(obj is core for obj in gc.get_objects())
