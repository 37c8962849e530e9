"""The upstream's usage block checked as a claim: what is billed and which problems are counted."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from gateway.proxy.stages import Usage
from gateway.proxy.usage import MAX_USAGE_TOKENS, UsageFields


def _check(usage: dict[str, Any]) -> tuple[Usage | None, tuple[str, ...]]:
    checked = msgspec.convert(usage, UsageFields).check()
    return checked.usage, checked.problems


def test_an_honest_usage_is_billed_as_reported() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "total_tokens": 120,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 12},
    }
    assert _check(usage) == (Usage(100, 20, 64), ())


def test_whole_floats_are_counts_and_the_bound_is_inclusive() -> None:
    assert _check({"prompt_tokens": 12.0, "completion_tokens": MAX_USAGE_TOKENS}) == (
        Usage(12, MAX_USAGE_TOKENS),
        (),
    )


@pytest.mark.parametrize(
    ("usage", "reason"),
    [
        ({"prompt_tokens": -1, "completion_tokens": 5}, "negative"),
        ({"prompt_tokens": 10, "completion_tokens": 2.5}, "not_integer"),
        ({"prompt_tokens": True, "completion_tokens": 5}, "not_integer"),
        ({"prompt_tokens": None, "completion_tokens": 5}, "not_integer"),
        ({"prompt_tokens": [1], "completion_tokens": 5}, "not_integer"),
        ({"prompt_tokens": 10, "completion_tokens": MAX_USAGE_TOKENS + 1}, "absurd"),
        ({"prompt_tokens": 10**40, "completion_tokens": 5}, "absurd"),
        ({"prompt_tokens": 1e400, "completion_tokens": 5}, "absurd"),
    ],
)
def test_a_bad_prompt_or_completion_count_makes_the_usage_untrusted(
    usage: dict[str, Any], reason: str
) -> None:
    assert _check(usage) == (None, (reason,))


@pytest.mark.parametrize(
    ("cached", "reason"), [(-5, "negative"), (11, "inconsistent"), ("3", "not_integer")]
)
def test_a_bad_cached_count_is_no_cache_discount(cached: Any, reason: str) -> None:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
    assert _check(usage) == (Usage(10, 5, 0), (reason,))


def test_reasoning_above_the_completion_is_billed_as_output() -> None:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "completion_tokens_details": {"reasoning_tokens": 40},
    }
    assert _check(usage) == (Usage(10, 40), ("inconsistent",))
    usage["completion_tokens_details"] = {"reasoning_tokens": -1}
    assert _check(usage) == (Usage(10, 5), ("negative",))


def test_a_total_that_does_not_add_up_is_counted_not_billed() -> None:
    assert _check({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 1}) == (
        Usage(10, 5),
        ("inconsistent",),
    )
