"""Built-in graded comparisons with an expected output: word_overlap, levenshtein and rouge_l."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from evaluators.base import (
    NO_EXPECTED,
    EvaluationInput,
    EvaluationResult,
    error_result,
    off_loop,
    resolve_expected,
    score_result,
)
from evaluators.config import ConfigReader
from evaluators.sequences import lcs_length, levenshtein_distance, words


@dataclass(frozen=True, slots=True)
class ExpectedConfig:
    expected: str | None


@dataclass(frozen=True, slots=True)
class LevenshteinConfig:
    expected: str | None
    case_sensitive: bool


def _expected_config(config: Mapping[str, Any]) -> ExpectedConfig:
    return ExpectedConfig(ConfigReader(config, ("expected",)).optional_str("expected"))


EXACT_SCORE = 1.0
CONTAINED_SCORE = 0.95
JACCARD_WEIGHT = 0.3
RECALL_WEIGHT = 0.7


def word_overlap_score(expected: str, actual: str) -> tuple[float, str]:
    """(score, which rule decided it) for the word_overlap evaluator; see its docstring."""
    want, got = words(expected), words(actual)
    if want == got:
        return EXACT_SCORE, "exact"
    # Padding with spaces makes containment respect word boundaries: "cat" is not in "concat".
    if want and f" {' '.join(want)} " in f" {' '.join(got)} ":
        return CONTAINED_SCORE, "contained"
    want_set, got_set = set(want), set(got)
    if not want_set:
        return 0.0, "overlap"
    common = len(want_set & got_set)
    jaccard = common / len(want_set | got_set)
    recall = common / len(want_set)
    return JACCARD_WEIGHT * jaccard + RECALL_WEIGHT * recall, "overlap"


class WordOverlap:
    """Word-level agreement with the expected output, forgiving of case and punctuation.

    Config:
    - ``expected`` (string, optional): defaults to the test case's expected output.

    Words are lower-cased ``\\w+`` tokens. Score 1.0 when the word sequences are equal;
    0.95 when the expected words appear contiguously in the response; otherwise
    0.3 * Jaccard + 0.7 * recall over the sets of words, where recall is
    |expected ∩ response| / |expected|. ``details.rule`` says which case applied.
    """

    key: ClassVar[str] = "word_overlap"
    version: ClassVar[str] = "1"
    default_threshold: ClassVar[float] = 0.5
    awaits_io: ClassVar[bool] = False

    def validate_config(self, config: Mapping[str, Any]) -> ExpectedConfig:
        return _expected_config(config)

    async def evaluate(self, config: ExpectedConfig, data: EvaluationInput) -> EvaluationResult:
        expected = resolve_expected(config.expected, data)
        if expected is None:
            return error_result(NO_EXPECTED)
        score, rule = word_overlap_score(expected, data.response_text)
        return score_result(score, self.default_threshold, {"rule": rule})


# Beyond this, one comparison could take seconds (the cost grows with the product of the
# lengths), which would stall the worker; longer texts are compared on this prefix.
LEVENSHTEIN_MAX_CHARS = 20_000
# Above this the comparison (up to ~0.15 s at the cap) runs in a thread: pure-Python big-int
# work, but the event loop gets the GIL back every switch interval, so the gateway keeps
# answering, and the runner's deadline can end the wait.
SEQUENCE_THREAD_ABOVE = 2_000


def levenshtein_similarity(expected: str, actual: str) -> tuple[float, int]:
    """(1 - distance / max(len), distance); two empty strings are identical (1.0)."""
    longest = max(len(expected), len(actual))
    if longest == 0:
        return 1.0, 0
    distance = levenshtein_distance(expected, actual)
    return 1.0 - distance / longest, distance


class Levenshtein:
    """Character-level similarity to the expected output: 1 - edit distance / longer length.

    Config:
    - ``expected`` (string, optional): defaults to the test case's expected output.
    - ``case_sensitive`` (boolean, default true).

    Both texts are stripped of surrounding whitespace; lengths count Unicode code points.
    ``details.distance`` is the edit distance. Texts longer than 20000 characters are
    compared on their first 20000 (``details.compared_chars`` says so), since the cost
    grows with the product of the lengths.
    """

    key: ClassVar[str] = "levenshtein"
    version: ClassVar[str] = "1"
    default_threshold: ClassVar[float] = 0.5
    awaits_io: ClassVar[bool] = False

    def validate_config(self, config: Mapping[str, Any]) -> LevenshteinConfig:
        reader = ConfigReader(config, ("expected", "case_sensitive"))
        return LevenshteinConfig(
            reader.optional_str("expected"), reader.boolean("case_sensitive", True)
        )

    async def evaluate(self, config: LevenshteinConfig, data: EvaluationInput) -> EvaluationResult:
        expected = resolve_expected(config.expected, data)
        if expected is None:
            return error_result(NO_EXPECTED)
        want, got = expected.strip(), data.response_text.strip()
        if not config.case_sensitive:
            want, got = want.casefold(), got.casefold()
        details: dict[str, Any] = {}
        if max(len(want), len(got)) > LEVENSHTEIN_MAX_CHARS:
            want, got = want[:LEVENSHTEIN_MAX_CHARS], got[:LEVENSHTEIN_MAX_CHARS]
            details["compared_chars"] = LEVENSHTEIN_MAX_CHARS
        if max(len(want), len(got)) > SEQUENCE_THREAD_ABOVE:
            score, distance = await off_loop(levenshtein_similarity, want, got)
        else:
            score, distance = levenshtein_similarity(want, got)
        return score_result(score, self.default_threshold, {"distance": distance, **details})


ROUGE_L_MAX_WORDS = 20_000
"""Like LEVENSHTEIN_MAX_CHARS: the LCS costs the product of the lengths; longer texts are
compared on their first 20000 words."""


def rouge_l_scores(expected: str, actual: str) -> tuple[float, float, float]:
    """(F-measure with β = 1, precision, recall) of the word-level LCS."""
    return _rouge_l(words(expected), words(actual))


def _rouge_l(want: list[str], got: list[str]) -> tuple[float, float, float]:
    if not want and not got:
        return 1.0, 1.0, 1.0
    common = lcs_length(want, got)
    if common == 0:
        return 0.0, 0.0, 0.0
    precision = common / len(got)
    recall = common / len(want)
    return 2 * precision * recall / (precision + recall), precision, recall


class RougeL:
    """ROUGE-L: longest-common-subsequence F-measure (β = 1) over lower-cased words.

    Config:
    - ``expected`` (string, optional): defaults to the test case's expected output.

    Precision is LCS / response words, recall is LCS / expected words, and the score is
    their harmonic mean; ``details`` holds both. Two texts without words score 1.0. Texts
    longer than 20000 words are compared on their first 20000 (``details.compared_words``
    says so), since the cost grows with the product of the lengths.
    """

    key: ClassVar[str] = "rouge_l"
    version: ClassVar[str] = "1"
    default_threshold: ClassVar[float] = 0.5
    awaits_io: ClassVar[bool] = False

    def validate_config(self, config: Mapping[str, Any]) -> ExpectedConfig:
        return _expected_config(config)

    async def evaluate(self, config: ExpectedConfig, data: EvaluationInput) -> EvaluationResult:
        expected = resolve_expected(config.expected, data)
        if expected is None:
            return error_result(NO_EXPECTED)
        want, got = words(expected), words(data.response_text)
        details: dict[str, Any] = {}
        if max(len(want), len(got)) > ROUGE_L_MAX_WORDS:
            want, got = want[:ROUGE_L_MAX_WORDS], got[:ROUGE_L_MAX_WORDS]
            details["compared_words"] = ROUGE_L_MAX_WORDS
        if max(len(want), len(got)) > SEQUENCE_THREAD_ABOVE:
            score, precision, recall = await off_loop(_rouge_l, want, got)
        else:
            score, precision, recall = _rouge_l(want, got)
        return score_result(
            score,
            self.default_threshold,
            {"precision": round(precision, 6), "recall": round(recall, 6), **details},
        )
