"""Sluice's evaluators: score an LLM response, as a pure library the gateway and worker share.

``base`` defines the protocol, ``registry`` finds evaluators by key, ``runner`` runs a
prompt's specs on one response; the built-ins live in ``text``, ``structure``,
``similarity``, ``performance``, ``judge`` and ``semantic``. Nothing here imports web,
database or cache code.
"""

from evaluators.base import (
    EvaluationInput,
    EvaluationResult,
    Evaluator,
    EvaluatorConfigError,
    RetryableEvaluationError,
    apply_threshold,
)
from evaluators.judge import JudgeClient, JudgeReply, JudgeReplyError
from evaluators.registry import EvaluatorRegistry, UnknownEvaluatorError, builtin_registry
from evaluators.runner import (
    EvaluationPlan,
    EvaluatorSpec,
    InvalidSpecsError,
    SpecOutcome,
    SpecProblem,
    overall_score,
    run_specs,
    should_sample,
    validate_specs,
)
from evaluators.semantic import Embedder
from evaluators.structure import TokenCounter

__all__ = [
    "Embedder",
    "EvaluationInput",
    "EvaluationPlan",
    "EvaluationResult",
    "Evaluator",
    "EvaluatorConfigError",
    "EvaluatorRegistry",
    "EvaluatorSpec",
    "InvalidSpecsError",
    "JudgeClient",
    "JudgeReply",
    "JudgeReplyError",
    "RetryableEvaluationError",
    "SpecOutcome",
    "SpecProblem",
    "TokenCounter",
    "UnknownEvaluatorError",
    "apply_threshold",
    "builtin_registry",
    "overall_score",
    "run_specs",
    "should_sample",
    "validate_specs",
]
