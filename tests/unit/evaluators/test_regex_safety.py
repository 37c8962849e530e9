"""The nested-quantifier check that keeps catastrophic regexes out of the worker."""

from __future__ import annotations

import pytest

from evaluators.regex_safety import nested_quantifier_at


@pytest.mark.parametrize(
    ("pattern", "position"),
    [
        (r"(a+)+$", 0),
        (r"(a*)*", 0),
        (r"(\w+\s?)*", 0),
        (r"^(\d+)*$", 1),
        (r"(?:a+)+", 0),
        (r"(?P<n>a+)+", 0),
        (r"((a+))*", 0),
        (r"(x(a+)y)*", 0),
        (r"(a{2,})*", 0),
        (r"(a+){3,}", 0),
        (r"(.*)*", 0),
        (r"(a+)*?", 0),  # lazy still backtracks
    ],
)
def test_flags_unbounded_repeat_of_unbounded_group(pattern: str, position: int) -> None:
    assert nested_quantifier_at(pattern) == position


@pytest.mark.parametrize(
    "pattern",
    [
        r"\d{3}-\d{4}",
        r"(ab)+",
        r"(a+b)?",
        r"(a{2,5})*",
        r"(a+){2}",
        r"(a|b)+c",
        r"[(a+)]+",  # inside a class, parentheses are literals
        r"[]a+]+",
        r"\(a+\)+",  # escaped parentheses are literals
        r"(?>a+)+",  # atomic group: never gives characters back
        r"(a+)++",  # possessive outer repeat
        r"(a*+)*",  # possessive inner repeat
        r"((?>a+)b)*",
        r"(?i)(abc)+",
        r"a{",
        r"x{,5}",
    ],
)
def test_accepts_patterns_without_nested_unbounded_repetition(pattern: str) -> None:
    assert nested_quantifier_at(pattern) is None
