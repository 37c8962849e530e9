"""Running a prompt's evaluator specs on one response: sampling, dependencies, containment.

``validate_specs`` checks a set of specs once and returns an ``EvaluationPlan`` (configs
validated, regexes compiled, schemas checked, dependency order fixed); workers keep the
plan and call ``plan.run`` per request. ``run_specs`` does both in one call, for
convenience where specs change more often than they run.

Running never raises for an evaluator's sake: an exception inside an evaluator becomes an
error result for that spec, a ``RetryableEvaluationError`` is retried up to
``max_attempts``. Only cancellation propagates, so a worker can still be shut down.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, NamedTuple

from evaluators.base import (
    ZERO_USD,
    BudgetExceeded,
    EvaluationInput,
    EvaluationResult,
    RetryableEvaluationError,
    apply_threshold,
    error_result,
    evaluation_deadline,
    skipped_result,
)
from evaluators.registry import EvaluatorRegistry, builtin_registry
from evaluators.specs import (
    EvaluatorSpec,
    InvalidSpecsError,
    PlannedStep,
    RunMode,
    SpecProblem,
    Waves,
    plan_specs,
)

# The spec types are re-exported: callers think of specs and running them as one API.
__all__ = [
    "EvaluationPlan",
    "EvaluatorSpec",
    "InvalidSpecsError",
    "RunMode",
    "SpecOutcome",
    "SpecProblem",
    "overall_score",
    "run_specs",
    "should_sample",
    "validate_specs",
]

logger = logging.getLogger(__name__)


class SpecOutcome(NamedTuple):
    spec: EvaluatorSpec
    result: EvaluationResult
    duration_ms: float


def should_sample(request_id: str, spec_id: str, rate: float) -> bool:
    """Whether this spec evaluates this request: a deterministic draw, uniform in [0, 1).

    Hashing (request, spec) rather than calling random() means a retried or replayed
    request gets the same decision, and independent specs get independent draws.
    """
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    # The unit separator keeps ("ab", "c") and ("a", "bc") apart.
    digest = hashlib.blake2b(f"{request_id}\x1f{spec_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def overall_score(outcomes: Iterable[SpecOutcome]) -> float | None:
    """Weighted mean score of the outcomes that were neither skipped nor errors.

    None when nothing counts (all skipped, all errors, or all weights zero).
    """
    total = weights = 0.0
    for outcome in outcomes:
        result = outcome.result
        if result.skipped or result.error is not None:
            continue
        total += outcome.spec.weight * result.score
        weights += outcome.spec.weight
    return total / weights if weights > 0 else None


class _TimedOut(Exception):
    pass


@dataclass(frozen=True, slots=True)
class EvaluationPlan:
    """Validated specs in dependency order, grouped into waves that can run concurrently."""

    waves: Waves

    @property
    def steps(self) -> tuple[PlannedStep, ...]:
        return tuple(step for wave in self.waves for step in wave)

    async def run(
        self,
        data: EvaluationInput,
        *,
        request_id: str,
        run_mode: RunMode | None = None,
        prior: Mapping[str, EvaluationResult] | None = None,
        max_attempts: int = 2,
        timeout_s: float | None = None,
    ) -> list[SpecOutcome]:
        """Evaluate ``data``; outcomes come back in dependency order.

        Disabled specs, specs of another ``run_mode`` (when one is given) and specs this
        request was not sampled for are not run and not reported. A spec with a
        dependency that did not pass, or did not run, is reported as skipped. ``prior``
        holds results already recorded by spec id (the inline results, when the worker
        runs the queued specs): they satisfy dependencies and are not run again.
        """
        results: dict[str, EvaluationResult] = dict(prior or {})
        not_run: dict[str, str] = {}
        outcomes: list[SpecOutcome] = []
        for wave in self.waves:
            runnable: list[PlannedStep] = []
            for step in wave:
                spec = step.spec
                if spec.id in results:
                    continue
                why_not = _why_not_run(spec, request_id, run_mode)
                if why_not is not None:
                    not_run[spec.id] = why_not
                    continue
                blocker = _blocking_dependency(spec, results, not_run)
                if blocker is not None:
                    dependency, reason = blocker
                    skipped = skipped_result(reason, {"dependency": dependency})
                    results[spec.id] = skipped
                    outcomes.append(SpecOutcome(spec, skipped, 0.0))
                    continue
                runnable.append(step)
            for outcome in await _run_wave(runnable, data, max_attempts, timeout_s):
                results[outcome.spec.id] = outcome.result
                outcomes.append(outcome)
        return outcomes


async def _run_wave(
    steps: Sequence[PlannedStep], data: EvaluationInput, max_attempts: int, timeout_s: float | None
) -> list[SpecOutcome]:
    """Run one wave: evaluators that await I/O overlap, the rest run inline.

    A task costs ~15 µs to create and schedule, several times what exact_match or a regex
    costs, so only evaluators that wait on something (a judge call, a thread) get one.
    """
    waiting = [step for step in steps if step.evaluator.awaits_io]
    if len(waiting) < 2:
        return [await _run_step(step, data, max_attempts, timeout_s) for step in steps]
    tasks = {
        step.spec.id: asyncio.create_task(_run_step(step, data, max_attempts, timeout_s))
        for step in waiting
    }
    try:
        inline = {
            step.spec.id: await _run_step(step, data, max_attempts, timeout_s)
            for step in steps
            if step.spec.id not in tasks
        }
        awaited = dict(zip(tasks, await asyncio.gather(*tasks.values()), strict=True))
    finally:
        # Reached with tasks pending only when this run is cancelled: take them down too.
        for task in tasks.values():
            task.cancel()
    return [inline[s.spec.id] if s.spec.id in inline else awaited[s.spec.id] for s in steps]


def _why_not_run(spec: EvaluatorSpec, request_id: str, run_mode: RunMode | None) -> str | None:
    if not spec.enabled:
        return "is disabled"
    if run_mode is not None and spec.run_mode != run_mode:
        return f"runs {spec.run_mode} and has no result yet"
    if not should_sample(request_id, spec.id, spec.sampling_rate):
        return "was not sampled for this request"
    return None


def _blocking_dependency(
    spec: EvaluatorSpec, results: Mapping[str, EvaluationResult], not_run: Mapping[str, str]
) -> tuple[str, str] | None:
    for dependency in spec.depends_on:
        result = results.get(dependency)
        if result is None:
            why = not_run.get(dependency, "has no result")
            return dependency, f"dependency {dependency!r} {why}"
        if result.passed:
            continue
        if result.skipped:
            return dependency, f"dependency {dependency!r} was skipped"
        if result.error is not None:
            return dependency, f"dependency {dependency!r} could not be evaluated"
        return dependency, f"dependency {dependency!r} did not pass"
    return None


async def _attempt(step: PlannedStep, data: EvaluationInput, timeout_s: float | None) -> Any:
    if timeout_s is None:
        return await step.evaluator.evaluate(step.config, data)
    if not step.evaluator.awaits_io:
        # Synchronous evaluators can only wait in off_loop, which enforces this deadline.
        token = evaluation_deadline.set(asyncio.get_running_loop().time() + timeout_s)
        try:
            return await step.evaluator.evaluate(step.config, data)
        except BudgetExceeded:
            raise _TimedOut from None
        finally:
            evaluation_deadline.reset(token)
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            return await step.evaluator.evaluate(step.config, data)
    except TimeoutError:
        # Only our own deadline is a timeout; a TimeoutError from inside the evaluator
        # (a judge client's socket, say) is an ordinary failure.
        if deadline.expired():
            raise _TimedOut from None
        raise


async def _run_step(
    step: PlannedStep, data: EvaluationInput, max_attempts: int, timeout_s: float | None
) -> SpecOutcome:
    started = time.perf_counter()
    spent: Decimal = ZERO_USD  # what failed attempts cost: a judge call is paid for regardless
    attempt = 0
    while True:
        attempt += 1
        try:
            outcome = await _attempt(step, data, timeout_s)
        except RetryableEvaluationError as exc:
            spent += exc.result.cost_usd
            if attempt < max_attempts:
                continue
            result = replace(
                exc.result, cost_usd=spent, details={**exc.result.details, "attempts": attempt}
            )
        except _TimedOut:
            result = error_result(f"timed out after {timeout_s:g} s", cost_usd=spent)
        except Exception as exc:  # containment is this function's whole job
            logger.warning(
                "evaluator %r (%s) raised", step.spec.id, step.spec.evaluator_key, exc_info=True
            )
            result = error_result(
                f"{type(exc).__name__}: {exc}", {"exception": type(exc).__name__}, cost_usd=spent
            )
        else:
            if not isinstance(outcome, EvaluationResult):
                result = error_result(
                    f"evaluator returned {type(outcome).__name__}, not an EvaluationResult"
                )
            elif attempt > 1:
                result = replace(
                    outcome,
                    cost_usd=outcome.cost_usd + spent,
                    details={**outcome.details, "attempts": attempt},
                )
            else:
                result = outcome
        break
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    return SpecOutcome(step.spec, apply_threshold(result, step.threshold), elapsed_ms)


def validate_specs(
    specs: Sequence[EvaluatorSpec], *, registry: EvaluatorRegistry | None = None
) -> EvaluationPlan:
    """Check ``specs`` and order them for running; raise InvalidSpecsError listing every problem.

    Checked: duplicate ids, unknown evaluator keys, invalid configs, threshold and
    sampling_rate outside [0, 1], negative weights, unknown run modes, dependencies on ids
    that do not exist, inline specs depending on queued ones (which have no result
    yet on the request path), and dependency cycles. Without ``registry``, the built-ins
    (with no judge client) are used.
    """
    return EvaluationPlan(plan_specs(specs, registry if registry is not None else _builtins()))


@functools.cache
def _builtins() -> EvaluatorRegistry:
    # Built on first use, not at import; without a judge client, llm_judge specs validate
    # but return an error result, so the gateway passes its own registry to run them.
    return builtin_registry()


async def run_specs(
    specs: Sequence[EvaluatorSpec],
    data: EvaluationInput,
    *,
    request_id: str,
    registry: EvaluatorRegistry | None = None,
    run_mode: RunMode | None = None,
    prior: Mapping[str, EvaluationResult] | None = None,
    max_attempts: int = 2,
    timeout_s: float | None = None,
) -> list[SpecOutcome]:
    """``validate_specs(specs).run(...)``: raises InvalidSpecsError for bad specs, never for
    a failing evaluator. Validation re-checks configs each call; hot loops should keep a plan."""
    plan = validate_specs(specs, registry=registry)
    return await plan.run(
        data,
        request_id=request_id,
        run_mode=run_mode,
        prior=prior,
        max_attempts=max_attempts,
        timeout_s=timeout_s,
    )
