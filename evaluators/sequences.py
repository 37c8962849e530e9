"""Sequence algorithms behind the similarity scores: word splitting, edit distance and LCS.

Both distance algorithms are bit-parallel, with Python's unbounded ints as the bit vectors:
one pass over the shorter sequence doing a handful of big-int operations per element, each
costing O(longer / 64) machine words. Two 2,000-character texts take about 2 ms, where
the textbook two-row dynamic programme takes about a second in pure Python; that is why
this package needs no rapidfuzz.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lower-cased ``\\w+`` tokens: punctuation and spacing never make two answers differ."""
    return _WORD.findall(text.lower())


def _trim_common_ends(
    a: Sequence[Hashable], b: Sequence[Hashable]
) -> tuple[Sequence[Hashable], Sequence[Hashable]]:
    # A shared prefix or suffix never changes the distance, and near-identical texts are
    # the common case for a regression test, so this often leaves almost nothing to do.
    start = 0
    limit = min(len(a), len(b))
    while start < limit and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    return a[start:end_a], b[start:end_b]


def _match_masks(pattern: Sequence[Hashable]) -> dict[Hashable, int]:
    """For each distinct element, the bit set of the positions where it occurs."""
    masks: dict[Hashable, int] = {}
    for position, element in enumerate(pattern):
        masks[element] = masks.get(element, 0) | (1 << position)
    return masks


def levenshtein_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Unit-cost insert/delete/substitute distance (Myers 1999, as formulated by Hyyrö 2001)."""
    a, b = _trim_common_ends(a, b)
    # Python's per-iteration overhead dwarfs a big-int operation, so loop over the shorter
    # sequence and make the longer one the bit vector.
    if len(a) > len(b):
        a, b = b, a
    m = len(b)
    if not a:
        return m
    masks = _match_masks(b)
    all_ones = (1 << m) - 1
    high_bit = 1 << (m - 1)
    positive, negative = all_ones, 0  # vertical deltas +1 / -1 down the current column
    distance = m
    for element in a:
        eq = masks.get(element, 0)
        xv = eq | negative
        xh = ((((eq & positive) + positive) & all_ones) ^ positive) | eq
        hp = negative | (~(xh | positive) & all_ones)
        hn = positive & xh
        if hp & high_bit:
            distance += 1
        elif hn & high_bit:
            distance -= 1
        # Shifting a 1 into the horizontal +1 vector is what makes this global edit
        # distance rather than approximate search (row 0 grows by one per column).
        hp = ((hp << 1) | 1) & all_ones
        hn = (hn << 1) & all_ones
        positive = hn | (~(xv | hp) & all_ones)
        negative = hp & xv
    return distance


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Length of the longest common subsequence (bit-parallel, Allison & Dix 1986)."""
    if len(a) > len(b):
        a, b = b, a  # loop over the shorter, as in levenshtein_distance
    m = len(b)
    if not a:
        return 0
    masks = _match_masks(b)
    all_ones = (1 << m) - 1
    row = all_ones  # zero bits mark matched positions of b
    for element in a:
        eq = masks.get(element)
        if eq is None:
            continue
        matched = row & eq
        row = ((row + matched) | (row - matched)) & all_ones
    return m - row.bit_count()
