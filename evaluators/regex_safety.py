"""Spotting regular expressions that can backtrack catastrophically, before they run.

Python's ``re`` has no timeout and holds the GIL while matching, so one pattern such as
``(a+)+$`` on a 40-character response would freeze an evaluation worker for minutes.
This is a conservative syntactic check for the common shape of that problem: an unbounded
quantifier (``*``, ``+``, ``{n,}``) applied to a group that itself contains one. It does
not catch every exponential pattern (overlapping alternations like ``(a|a)*`` pass), which
is why the regex evaluator also caps how much of the response it searches.

Patterns can opt out explicitly with constructs that forbid backtracking, both supported
since Python 3.11: an atomic group ``(?>...)`` or a possessive quantifier ``(...)*+``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Group:
    start: int
    atomic: bool
    has_unbounded: bool = False


def nested_quantifier_at(pattern: str) -> int | None:
    """The index of a group that repeats an unbounded repetition, or None if none is found."""
    stack = [_Group(start=-1, atomic=False)]
    i = 0
    length = len(pattern)
    while i < length:
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _end_of_class(pattern, i)
            continue
        if char == "(":
            stack.append(_Group(start=i, atomic=pattern.startswith("(?>", i)))
            i += 1
            continue
        if char == ")" and len(stack) > 1:
            group = stack.pop()
            unbounded, possessive, after = _quantifier_at(pattern, i + 1)
            inner = group.has_unbounded and not group.atomic
            if unbounded and inner and not possessive:
                return group.start
            # Once an atomic group or possessive repeat has matched it never gives characters
            # back, so nothing inside it can feed backtracking in an enclosing repeat.
            if (inner or unbounded) and not possessive:
                stack[-1].has_unbounded = True
            i = after
            continue
        unbounded, possessive, after = _quantifier_at(pattern, i)
        if after > i:
            if unbounded and not possessive:
                stack[-1].has_unbounded = True
            i = after
            continue
        i += 1
    return None


def _end_of_class(pattern: str, start: int) -> int:
    """The index just past the ``]`` closing the character class opened at ``start``."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    # A `]` right after `[` or `[^` is a literal, not the end of the class.
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "]":
            return i + 1
        i += 1
    return len(pattern)


def _quantifier_at(pattern: str, i: int) -> tuple[bool, bool, int]:
    """(unbounded, possessive, index after it) for a quantifier starting at ``i``.

    The index after is ``i`` itself when no quantifier starts there.
    """
    if i >= len(pattern):
        return False, False, i
    char = pattern[i]
    if char in "*+?":
        end = i + 1
        unbounded = char != "?"
    elif char == "{":
        close = pattern.find("}", i)
        body = pattern[i + 1 : close] if close != -1 else ""
        low, comma, high = body.partition(",")
        if close == -1 or not (low.strip().isdigit() or (comma and not low.strip())):
            return False, False, i  # a literal `{`, as `re` reads it
        if high.strip() and not high.strip().isdigit():
            return False, False, i
        end = close + 1
        unbounded = bool(comma) and not high.strip()
    else:
        return False, False, i
    if end < len(pattern) and pattern[end] == "+":
        return unbounded, True, end + 1
    if end < len(pattern) and pattern[end] == "?":
        end += 1  # lazy: still backtracks, just in the other order
    return unbounded, False, end
