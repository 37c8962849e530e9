"""The evaluator protocol: what an evaluator receives, what it returns and how it fails.

Money is ``decimal.Decimal`` everywhere in this package (``EvaluationInput.cost_usd``,
``EvaluationResult.cost_usd``, the judge's reply), matching the gateway's exact budgets:
a float would drift when thousands of judge costs are summed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Protocol, TypeVar

ZERO_USD = Decimal(0)


class EvaluatorConfigError(ValueError):
    """A config that an evaluator cannot run with; ``field`` names the offending key."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class RetryableEvaluationError(Exception):
    """A failure worth another attempt (a judge reply that did not parse, a 429 upstream).

    ``result`` is what to record if no attempt is left: it carries the error, the raw
    material and the cost already spent, so a failed judge call is still billed.
    ``JudgeClient`` implementations raise this for transient upstream failures too.
    """

    def __init__(self, message: str, result: EvaluationResult | None = None) -> None:
        super().__init__(message)
        self.result = result if result is not None else error_result(message)


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationInput:
    """Everything an evaluator may look at for one logged request.

    ``response_json`` is the parsed response text when it parses, else None; because
    the JSON text ``null`` also parses to None, evaluators that care (json_valid,
    json_schema) parse ``response_text`` themselves when it is None.
    """

    request: Mapping[str, Any]
    response_text: str
    response_json: Any | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    expected: str | None = None
    latency_ms: float | None = None
    cost_usd: Decimal | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    response_schema: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationResult:
    """One evaluator's verdict; ``error`` is set when the evaluator could not judge at all.

    ``score`` is in [0, 1]; ``cost_usd`` is what the evaluation itself spent (a judge
    call), not the cost of the request being judged.
    """

    score: float
    passed: bool
    details: Mapping[str, Any] = field(default_factory=dict)
    cost_usd: Decimal = ZERO_USD
    skipped: bool = False
    error: str | None = None

    def __post_init__(self) -> None:
        # An evaluator bug must surface as an error result, not a score of 1.7 in the database.
        if not (0.0 <= self.score <= 1.0) or math.isnan(self.score):
            raise ValueError(f"score must be within [0, 1], got {self.score!r}")


def check_result(ok: bool, details: Mapping[str, Any] | None = None) -> EvaluationResult:
    """A pass/fail check: score 1.0 or 0.0."""
    return EvaluationResult(score=1.0 if ok else 0.0, passed=ok, details=details or {})


def score_result(
    score: float,
    threshold: float,
    details: Mapping[str, Any] | None = None,
    *,
    cost_usd: Decimal = ZERO_USD,
) -> EvaluationResult:
    """A graded score, passed when it reaches ``threshold``."""
    return EvaluationResult(
        score=score, passed=score >= threshold, details=details or {}, cost_usd=cost_usd
    )


def error_result(
    message: str,
    details: Mapping[str, Any] | None = None,
    *,
    cost_usd: Decimal = ZERO_USD,
) -> EvaluationResult:
    """The evaluator could not judge: score 0, not passed, ``error`` set."""
    return EvaluationResult(
        score=0.0, passed=False, details=details or {}, cost_usd=cost_usd, error=message
    )


def skipped_result(reason: str, details: Mapping[str, Any] | None = None) -> EvaluationResult:
    """The evaluator was not run (a dependency did not pass): score 0, not passed."""
    return EvaluationResult(
        score=0.0, passed=False, details={"reason": reason, **(details or {})}, skipped=True
    )


def apply_threshold(result: EvaluationResult, threshold: float) -> EvaluationResult:
    """Recompute ``passed`` as ``score >= threshold``; errors and skips never pass."""
    passed = result.error is None and not result.skipped and result.score >= threshold
    return result if passed == result.passed else replace(result, passed=passed)


def resolve_expected(configured: str | None, data: EvaluationInput) -> str | None:
    """The value to compare against: the config's own, else the test case's expected output."""
    return configured if configured is not None else data.expected


NO_EXPECTED = "no expected value: set it in the config or run against a test case with one"

ConfigT = TypeVar("ConfigT")
T = TypeVar("T")

# One thread for the CPU-bound evaluators' large inputs. Their work is pure Python (holding
# the GIL between bytecodes) or RE2; with one such thread the event loop waits at most one
# switch interval (5 ms) for the GIL, where each extra thread would add another. They gain
# nothing from more threads anyway: the GIL runs them one at a time.
_CPU = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sluice-evaluator")

evaluation_deadline: ContextVar[float | None] = ContextVar("evaluation_deadline", default=None)
"""The running evaluator's deadline on the event loop's clock, set by the runner.

A synchronous evaluator cannot be interrupted, and finishes in microseconds on the inputs
it runs inline; the only places one can take long are ``off_loop`` and I/O. So the runner
sets this for synchronous evaluators (a context variable costs far less than a timer per
evaluator on the request path) and ``off_loop`` enforces it; evaluators that await I/O get
a timer around the whole call instead."""


class BudgetExceeded(Exception):
    """``off_loop`` work outlived the evaluator's deadline; the runner records a timeout."""


async def off_loop(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in the evaluators' thread, so the event loop keeps serving, bounded
    by ``evaluation_deadline`` when one is set (the work itself runs on to its end, bounded by
    the evaluators' input caps, but nobody waits for it)."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(_CPU, function, *args)
    deadline = evaluation_deadline.get()
    if deadline is None:
        return await future
    try:
        return await asyncio.wait_for(future, max(0.0, deadline - loop.time()))
    except TimeoutError:
        raise BudgetExceeded from None


class Evaluator(Protocol[ConfigT]):
    """What the registry and the runner need from an evaluator.

    ``key`` names it in specs; ``version`` is bumped whenever scoring changes so stored
    results stay comparable; ``default_threshold`` is 1.0 for checks and 0.5 for scores;
    ``awaits_io`` is True when ``evaluate`` waits on I/O or a thread (a judge call), so the
    runner overlaps it with other such evaluators instead of running it inline.
    ``validate_config`` turns a JSON config into a typed, ready-to-run value (regexes
    compiled, schemas checked) or raises ``EvaluatorConfigError``; ``evaluate`` never
    sees an unvalidated config.
    """

    @property
    def key(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def default_threshold(self) -> float: ...

    @property
    def awaits_io(self) -> bool: ...

    def validate_config(self, config: Mapping[str, Any]) -> ConfigT: ...

    async def evaluate(self, config: ConfigT, data: EvaluationInput) -> EvaluationResult: ...
