"""The graded comparisons: word_overlap, levenshtein and rouge_l, on hand-computed values."""

from __future__ import annotations

from typing import Any

import pytest

from evaluators.base import EvaluationInput, EvaluationResult, Evaluator, EvaluatorConfigError
from evaluators.similarity import (
    Levenshtein,
    RougeL,
    WordOverlap,
    levenshtein_similarity,
    rouge_l_scores,
    word_overlap_score,
)


def given(response: str, expected: str | None = None) -> EvaluationInput:
    return EvaluationInput(request={}, response_text=response, expected=expected)


async def run(
    evaluator: Evaluator[Any], config: dict[str, Any], data: EvaluationInput
) -> EvaluationResult:
    return await evaluator.evaluate(evaluator.validate_config(config), data)


@pytest.mark.parametrize(
    ("expected", "actual", "score", "rule"),
    [
        # Equal word sequences after lower-casing and dropping punctuation.
        ("Paris.", "paris", 1.0, "exact"),
        ("", "", 1.0, "exact"),
        # Expected words appear contiguously in the response.
        ("the capital is Paris", "I think the capital is Paris, France.", 0.95, "contained"),
        # E = {the, cat, sat, on, mat}, A = {a, cat, sat, on, rug}: |∩| = 3, |∪| = 7.
        # 0.3 * 3/7 + 0.7 * 3/5 = 0.128571… + 0.42
        ("the cat sat on the mat", "a cat sat on a rug", 0.3 * 3 / 7 + 0.7 * 3 / 5, "overlap"),
        # E = {quick, brown, fox}, A = {the, brown, dog}: |∩| = 1, |∪| = 5.
        ("quick brown fox", "the brown dog", 0.3 * 1 / 5 + 0.7 * 1 / 3, "overlap"),
        # Containment respects word boundaries: "cat" is not a word of "concatenate".
        ("cat", "concatenate", 0.0, "overlap"),
        # Same words, other order: not contiguous, but Jaccard and recall are both 1.
        ("red blue", "blue red", 1.0, "overlap"),
        ("a b", "", 0.0, "overlap"),
        ("!!!", "ok", 0.0, "overlap"),
    ],
)
def test_word_overlap_known_pairs(expected: str, actual: str, score: float, rule: str) -> None:
    got_score, got_rule = word_overlap_score(expected, actual)
    assert got_score == pytest.approx(score, abs=1e-12)
    assert got_rule == rule


def test_word_overlap_hand_computed_literal() -> None:
    score, _ = word_overlap_score("the cat sat on the mat", "a cat sat on a rug")
    assert score == pytest.approx(0.548571428571, abs=1e-12)


async def test_word_overlap_evaluator_uses_expected_and_threshold() -> None:
    result = await run(WordOverlap(), {}, given("a cat sat on a rug", "the cat sat on the mat"))
    assert result.passed  # 0.5486 >= 0.5
    assert result.details == {"rule": "overlap"}
    low = await run(WordOverlap(), {"expected": "quick brown fox"}, given("the brown dog"))
    assert (low.passed, round(low.score, 4)) == (False, 0.2933)


async def test_word_overlap_without_expected_is_an_error() -> None:
    result = await run(WordOverlap(), {}, given("anything"))
    assert result.error is not None and result.error.startswith("no expected value")


@pytest.mark.parametrize(
    ("a", "b", "distance", "score"),
    [
        ("kitten", "sitting", 3, 1 - 3 / 7),
        ("flaw", "lawn", 2, 0.5),
        ("", "", 0, 1.0),
        ("abc", "", 3, 0.0),
        ("café", "cafe", 1, 0.75),
        ("same", "same", 0, 1.0),
    ],
)
def test_levenshtein_known_values(a: str, b: str, distance: int, score: float) -> None:
    got_score, got_distance = levenshtein_similarity(a, b)
    assert got_score == pytest.approx(score)
    assert got_distance == distance


async def test_levenshtein_evaluator_strips_and_optionally_folds_case() -> None:
    sensitive = await run(Levenshtein(), {"expected": "ABC"}, given("  abc \n"))
    assert (sensitive.score, sensitive.details) == (0.0, {"distance": 3})
    folded = await run(Levenshtein(), {"expected": "ABC", "case_sensitive": False}, given("abc"))
    assert folded.score == 1.0
    kitten = await run(Levenshtein(), {}, given("sitting", expected="kitten"))
    assert kitten.score == pytest.approx(4 / 7)
    assert kitten.passed


async def test_levenshtein_compares_long_texts_on_a_prefix() -> None:
    long_text = "ab" * 15_000
    result = await run(Levenshtein(), {"expected": long_text}, given(long_text + "c"))
    assert result.score == 1.0
    assert result.details == {"distance": 0, "compared_chars": 20_000}


@pytest.mark.parametrize(
    ("expected", "actual", "f", "precision", "recall"),
    [
        # LCS "the cat on the mat" = 5 of 6 words on both sides.
        ("the cat sat on the mat", "the cat is on the mat", 5 / 6, 5 / 6, 5 / 6),
        # The classic ROUGE example: LCS "police the gunman" = 3 of 4.
        ("police killed the gunman", "police kill the gunman", 0.75, 0.75, 0.75),
        ("police killed the gunman", "the gunman kill police", 0.5, 0.5, 0.5),
        # P = 2/2, R = 2/4, F = 2 * 1 * 0.5 / 1.5
        ("a b c d", "A, C!", 2 / 3, 1.0, 0.5),
        ("", "", 1.0, 1.0, 1.0),
        ("a b", "", 0.0, 0.0, 0.0),
        ("a b", "c d", 0.0, 0.0, 0.0),
    ],
)
def test_rouge_l_known_values(
    expected: str, actual: str, f: float, precision: float, recall: float
) -> None:
    assert rouge_l_scores(expected, actual) == pytest.approx((f, precision, recall))


async def test_rouge_l_evaluator_reports_precision_and_recall() -> None:
    result = await run(RougeL(), {"expected": "a b c d"}, given("a c"))
    assert result.score == pytest.approx(2 / 3)
    assert result.details == {"precision": 1.0, "recall": 0.5}
    assert result.passed


def test_expected_must_be_a_string() -> None:
    with pytest.raises(EvaluatorConfigError, match="expected: expected a string, got a number"):
        RougeL().validate_config({"expected": 1})
