"""A/B variant assignment: by weight, sticky per user through a stable hash, random without.

The hash covers the test id and the user, so one user lands independently in different
tests, the same user always lands in the same variant of one test (on every replica, across
restarts), and over many users the split follows the weights.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.prompts.records import Variant

__all__ = ["RunningTest", "sticky_fraction"]


def sticky_fraction(test_id: str, user: str) -> float:
    """A number in [0, 1) fixed by (test, user) and uniform over users."""
    digest = hashlib.blake2b(f"{test_id}\x00{user}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True, slots=True)
class RunningTest:
    id: str
    variants: tuple[Variant, ...]
    bounds: tuple[float, ...]
    """Cumulative weight shares: variant i takes [bounds[i-1], bounds[i])."""

    @classmethod
    def of(cls, test_id: str, variants: Sequence[Variant]) -> RunningTest:
        total = sum(v.weight for v in variants)
        bounds = []
        running = 0.0
        for variant in variants:
            running += variant.weight / total
            bounds.append(running)
        return cls(test_id, tuple(variants), tuple(bounds))

    def assign(self, user: str | None, draw: Callable[[], float] = random.random) -> Variant:
        point = draw() if user is None else sticky_fraction(self.id, user)
        for variant, bound in zip(self.variants, self.bounds, strict=True):
            if point < bound:
                return variant
        # Rounding can leave the last bound a hair under 1: the last weighted variant takes it.
        return next(v for v in reversed(self.variants) if v.weight > 0)
