"""The registry of evaluators by key, and the built-in set it starts with."""

from __future__ import annotations

import inspect

import pytest

from evaluators.registry import EvaluatorRegistry, UnknownEvaluatorError, builtin_registry
from evaluators.text import ExactMatch

BUILTIN_KEYS = [
    "contains",
    "contains_all",
    "contains_any",
    "cost_max",
    "exact_match",
    "json_schema",
    "json_valid",
    "latency_max",
    "length",
    "levenshtein",
    "llm_judge",
    "regex",
    "rouge_l",
    "semantic_similarity",
    "starts_with",
    "word_overlap",
]
SCORES = {"word_overlap", "levenshtein", "rouge_l", "llm_judge", "semantic_similarity"}


def test_builtin_keys() -> None:
    assert builtin_registry().keys() == BUILTIN_KEYS


def test_builtins_declare_version_threshold_and_a_config_docstring() -> None:
    for evaluator in builtin_registry():
        assert evaluator.version == "1"
        assert evaluator.default_threshold == (0.5 if evaluator.key in SCORES else 1.0)
        assert evaluator.awaits_io is (evaluator.key in {"llm_judge", "semantic_similarity"})
        doc = inspect.getdoc(type(evaluator))
        assert doc is not None and "Config" in doc, evaluator.key


def test_unknown_key_lists_the_known_ones() -> None:
    registry = EvaluatorRegistry([ExactMatch()])
    with pytest.raises(UnknownEvaluatorError) as caught:
        registry.get("exact")
    assert str(caught.value) == "unknown evaluator 'exact'; known evaluators: exact_match"
    assert caught.value.known == ["exact_match"]


def test_register_refuses_a_duplicate_unless_replacing() -> None:
    registry = EvaluatorRegistry([ExactMatch()])
    with pytest.raises(ValueError, match="'exact_match' is already registered"):
        registry.register(ExactMatch())
    replacement = ExactMatch()
    registry.register(replacement, replace=True)
    assert registry.get("exact_match") is replacement
    assert "exact_match" in registry
    assert len(registry) == 1
