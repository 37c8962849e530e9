"""Evaluators by key: the lookup table specs are resolved against, and the built-in set."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from evaluators.base import Evaluator
from evaluators.judge import JudgeClient, LlmJudge
from evaluators.performance import CostMax, LatencyMax
from evaluators.semantic import Embedder, SemanticSimilarity
from evaluators.similarity import Levenshtein, RougeL, WordOverlap
from evaluators.structure import JsonSchema, JsonValid, Length, TokenCounter
from evaluators.text import Contains, ContainsAll, ContainsAny, ExactMatch, Regex, StartsWith


class UnknownEvaluatorError(LookupError):
    """A spec names an evaluator key nobody registered."""

    def __init__(self, key: str, known: Iterable[str]) -> None:
        self.key = key
        self.known = sorted(known)
        super().__init__(f"unknown evaluator {key!r}; known evaluators: {', '.join(self.known)}")

    def __str__(self) -> str:
        # LookupError would repr() the message, quoting it; the message is already readable.
        return str(self.args[0])


class EvaluatorRegistry:
    """A mutable map from key to evaluator instance."""

    def __init__(self, evaluators: Iterable[Evaluator[Any]] = ()) -> None:
        self._by_key: dict[str, Evaluator[Any]] = {}
        for evaluator in evaluators:
            self.register(evaluator)

    def register(self, evaluator: Evaluator[Any], *, replace: bool = False) -> None:
        """Add ``evaluator``; ``replace=True`` swaps out one with the same key (a judge
        evaluator with the gateway's client, say) instead of raising ValueError."""
        if evaluator.key in self._by_key and not replace:
            raise ValueError(f"an evaluator with key {evaluator.key!r} is already registered")
        self._by_key[evaluator.key] = evaluator

    def get(self, key: str) -> Evaluator[Any]:
        try:
            return self._by_key[key]
        except KeyError:
            raise UnknownEvaluatorError(key, self._by_key) from None

    def keys(self) -> list[str]:
        return sorted(self._by_key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __iter__(self) -> Iterator[Evaluator[Any]]:
        return iter([self._by_key[key] for key in self.keys()])

    def __len__(self) -> int:
        return len(self._by_key)


def builtin_registry(
    *,
    judge_client: JudgeClient | None = None,
    token_counter: TokenCounter | None = None,
    embedder: Embedder | None = None,
) -> EvaluatorRegistry:
    """A fresh registry of every built-in evaluator.

    ``judge_client`` is what llm_judge calls (without one it returns an error result);
    ``token_counter`` counts tokens for length (default: ``gateway.tokens``);
    ``embedder`` embeds for semantic_similarity (default: the bundled MiniLM model).
    """
    return EvaluatorRegistry(
        [
            ExactMatch(),
            Contains(),
            StartsWith(),
            ContainsAll(),
            ContainsAny(),
            Regex(),
            JsonValid(),
            JsonSchema(),
            Length(token_counter),
            WordOverlap(),
            Levenshtein(),
            RougeL(),
            LatencyMax(),
            CostMax(),
            LlmJudge(judge_client),
            SemanticSimilarity(embedder),
        ]
    )
