"""The bit-parallel edit distance and LCS, checked against the textbook dynamic programmes."""

from __future__ import annotations

import random
import time

import pytest

from evaluators.sequences import lcs_length, levenshtein_distance, words


def reference_levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, 1):
            current[j] = min(
                previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)
            )
        previous = current
    return previous[-1]


def reference_lcs(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for item in a:
        current = [0]
        for j, other in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if item == other else max(previous[j], current[-1]))
        previous = current
    return previous[-1]


def test_words_are_lowercased_word_tokens() -> None:
    assert words("Hello, WORLD! it's 2024_v2") == ["hello", "world", "it", "s", "2024_v2"]


@pytest.mark.parametrize("seed", range(5))
def test_levenshtein_matches_the_dynamic_programme(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(800):
        alphabet = "abc"[: rng.randint(1, 3)] + rng.choice(["", "xyz"])
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        assert levenshtein_distance(a, b) == reference_levenshtein(a, b), (a, b)


def test_levenshtein_beyond_one_machine_word() -> None:
    rng = random.Random(7)
    a = "".join(rng.choice("abcdefgh") for _ in range(230))
    b = "".join(rng.choice("abcdefgh") for _ in range(190))
    assert levenshtein_distance(a, b) == reference_levenshtein(a, b)


@pytest.mark.parametrize("seed", range(5))
def test_lcs_matches_the_dynamic_programme(seed: int) -> None:
    rng = random.Random(seed)
    vocabulary = ["the", "cat", "sat", "on", "mat", "a"]
    for _ in range(800):
        a = [rng.choice(vocabulary) for _ in range(rng.randint(0, 20))]
        b = [rng.choice(vocabulary) for _ in range(rng.randint(0, 20))]
        assert lcs_length(a, b) == reference_lcs(a, b), (a, b)


def test_long_texts_are_fast() -> None:
    rng = random.Random(3)
    a = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(3000))
    b = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(3000))
    started = time.perf_counter()
    levenshtein_distance(a, b)
    lcs_length(a.split(), b.split())
    # The two-row dynamic programme needs ~2 s for this in pure Python.
    assert time.perf_counter() - started < 0.5
