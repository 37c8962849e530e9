"""A/B assignment: weights respected over many users, the same user always in one variant."""

from __future__ import annotations

import math
import random

from gateway.prompts.assignment import RunningTest, sticky_fraction
from gateway.prompts.records import Variant


def _test(*weights: float) -> RunningTest:
    variants = [Variant(name=f"v{i}", version=i + 1, weight=w) for i, w in enumerate(weights)]
    return RunningTest.of("test-1", variants)


def _within_bounds(count: int, n: int, p: float) -> bool:
    # Five standard deviations: a correct split fails this about once in 1.7 million runs.
    return abs(count - n * p) <= 5 * math.sqrt(n * p * (1 - p))


def test_users_split_by_weight() -> None:
    test = _test(1, 3, 0, 6)
    n = 50_000
    counts = {"v0": 0, "v1": 0, "v2": 0, "v3": 0}
    for user in range(n):
        counts[test.assign(f"user-{user}").name] += 1
    assert counts["v2"] == 0
    assert _within_bounds(counts["v0"], n, 0.1)
    assert _within_bounds(counts["v1"], n, 0.3)
    assert _within_bounds(counts["v3"], n, 0.6)


def test_anonymous_calls_split_by_weight() -> None:
    test = _test(1, 1)
    draws = random.Random(7)
    n = 20_000
    first = sum(test.assign(None, draws.random).name == "v0" for _ in range(n))
    assert _within_bounds(first, n, 0.5)


def test_a_user_is_sticky_within_a_test_and_independent_across_tests() -> None:
    test = _test(1, 1, 1)
    assert len({test.assign("alice").name for _ in range(100)}) == 1
    other = RunningTest.of("test-2", test.variants)
    same = sum(test.assign(f"u{i}").name == other.assign(f"u{i}").name for i in range(30_000))
    assert _within_bounds(same, 30_000, 1 / 3)


def test_sticky_fraction_is_stable_and_in_range() -> None:
    value = sticky_fraction("t", "alice")
    assert value == sticky_fraction("t", "alice")
    assert 0 <= value < 1
    assert value != sticky_fraction("t", "bob")


def test_a_draw_at_the_top_edge_lands_on_a_weighted_variant() -> None:
    test = _test(1, 2, 0)
    assert test.assign(None, lambda: 0.9999999999999999).name == "v1"
