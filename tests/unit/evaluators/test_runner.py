"""Running specs: dependency order, skips, sampling, thresholds, retries and containment."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from evaluators.base import (
    EvaluationInput,
    EvaluationResult,
    RetryableEvaluationError,
    check_result,
    error_result,
    off_loop,
)
from evaluators.registry import EvaluatorRegistry, builtin_registry
from evaluators.runner import (
    EvaluatorSpec,
    SpecOutcome,
    overall_score,
    run_specs,
    should_sample,
    validate_specs,
)

JSON_ANSWER = EvaluationInput(
    request={"model": "gpt-4o"}, response_text='{"city": "Paris"}', expected='{"city": "Paris"}'
)
PROSE_ANSWER = EvaluationInput(request={"model": "gpt-4o"}, response_text="It is Paris.")
SCHEMA = {"type": "object", "required": ["city"]}


def spec(spec_id: str, key: str, **fields: Any) -> EvaluatorSpec:
    return EvaluatorSpec(id=spec_id, evaluator_key=key, **fields)


def by_id(outcomes: list[SpecOutcome]) -> dict[str, EvaluationResult]:
    return {outcome.spec.id: outcome.result for outcome in outcomes}


class Exploding:
    key: ClassVar[str] = "exploding"
    version: ClassVar[str] = "1"
    default_threshold: ClassVar[float] = 1.0
    awaits_io: ClassVar[bool] = False

    def validate_config(self, config: Mapping[str, Any]) -> None:
        return None

    async def evaluate(self, config: None, data: EvaluationInput) -> EvaluationResult:
        raise RuntimeError("boom")


class WrongType(Exploding):
    key: ClassVar[str] = "wrong_type"

    async def evaluate(self, config: None, data: EvaluationInput) -> EvaluationResult:
        return "yes"  # type: ignore[return-value]


class Flaky(Exploding):
    """Fails retryably ``failures`` times (each costing 0.001), then passes."""

    key: ClassVar[str] = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def evaluate(self, config: None, data: EvaluationInput) -> EvaluationResult:
        self.calls += 1
        if self.calls <= self.failures:
            raise RetryableEvaluationError(
                "try again", error_result("try again", cost_usd=Decimal("0.001"))
            )
        return check_result(True)


class Slow(Exploding):
    key: ClassVar[str] = "slow"
    awaits_io: ClassVar[bool] = True

    async def evaluate(self, config: None, data: EvaluationInput) -> EvaluationResult:
        await asyncio.sleep(10)
        return check_result(True)


class Grinding(Exploding):
    """Synchronous work in the evaluators' thread that lasts until ``release`` is set."""

    key: ClassVar[str] = "grinding"

    def __init__(self) -> None:
        self.release = threading.Event()

    async def evaluate(self, config: None, data: EvaluationInput) -> EvaluationResult:
        await off_loop(self.release.wait)
        return check_result(True)


class Rendezvous(Exploding):
    """Passes only once ``parties`` evaluations are waiting at the same time."""

    key: ClassVar[str] = "rendezvous"
    awaits_io: ClassVar[bool] = True

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.everyone = asyncio.Event()

    async def evaluate(self, config: None, data: EvaluationInput) -> EvaluationResult:
        self.arrived += 1
        if self.arrived == self.parties:
            self.everyone.set()
        await self.everyone.wait()
        return check_result(True)


def registry_with(*extra: Any) -> EvaluatorRegistry:
    registry = builtin_registry()
    for evaluator in extra:
        registry.register(evaluator)
    return registry


async def test_dependent_runs_when_its_dependency_passes() -> None:
    specs = [
        spec("schema", "json_schema", config={"schema": SCHEMA}, depends_on=["json"]),
        spec("json", "json_valid"),
    ]
    outcomes = await run_specs(specs, JSON_ANSWER, request_id="r")
    assert [o.spec.id for o in outcomes] == ["json", "schema"]  # dependency order
    assert all(o.result.passed for o in outcomes)
    assert all(o.duration_ms >= 0 for o in outcomes)


async def test_dependent_is_skipped_when_its_dependency_fails() -> None:
    specs = [
        spec("json", "json_valid"),
        spec("schema", "json_schema", config={"schema": SCHEMA}, depends_on=["json"]),
        spec("judge_like", "contains", config={"value": "Paris"}, depends_on=["schema"]),
        spec("free", "contains", config={"value": "Paris"}),
    ]
    results = by_id(await run_specs(specs, PROSE_ANSWER, request_id="r"))
    assert results["json"].passed is False
    skipped = results["schema"]
    assert (skipped.score, skipped.passed, skipped.skipped, skipped.error) == (
        0.0,
        False,
        True,
        None,
    )
    assert skipped.details == {"reason": "dependency 'json' did not pass", "dependency": "json"}
    assert results["judge_like"].details["reason"] == "dependency 'schema' was skipped"
    assert results["free"].passed


async def test_dependency_with_an_error_skips_its_dependents() -> None:
    specs = [spec("exact", "exact_match"), spec("after", "json_valid", depends_on=["exact"])]
    results = by_id(await run_specs(specs, PROSE_ANSWER, request_id="r"))  # no expected value
    assert results["exact"].error is not None
    assert results["after"].details["reason"] == "dependency 'exact' could not be evaluated"


async def test_exceptions_are_contained_as_error_results() -> None:
    registry = registry_with(Exploding(), WrongType())
    specs = [
        spec("bomb", "exploding"),
        spec("odd", "wrong_type"),
        spec("fine", "json_valid"),
        spec("after", "json_valid", depends_on=["bomb"]),
    ]
    results = by_id(await run_specs(specs, JSON_ANSWER, request_id="r", registry=registry))
    assert results["bomb"].error == "RuntimeError: boom"
    assert results["bomb"].details == {"exception": "RuntimeError"}
    assert (results["bomb"].score, results["bomb"].passed) == (0.0, False)
    assert results["odd"].error == "evaluator returned str, not an EvaluationResult"
    assert results["fine"].passed
    assert results["after"].skipped


async def test_spec_threshold_overrides_the_default() -> None:
    data = EvaluationInput(
        request={}, response_text="a cat sat on a rug", expected="the cat sat on the mat"
    )
    specs = [
        spec("default", "word_overlap"),
        spec("strict", "word_overlap", threshold=0.9),
        spec("half", "contains_all", config={"values": ["cat", "dog"]}, threshold=0.5),
    ]
    results = by_id(await run_specs(specs, data, request_id="r"))
    assert results["default"].passed and not results["strict"].passed
    assert results["strict"].score == results["default"].score
    assert (results["half"].score, results["half"].passed) == (0.5, True)


async def test_disabled_and_unsampled_specs_are_not_reported_and_block_dependents() -> None:
    specs = [
        spec("off", "json_valid", enabled=False),
        spec("never", "json_valid", sampling_rate=0.0),
        spec("needs_off", "json_valid", depends_on=["off"]),
        spec("needs_never", "json_valid", depends_on=["never"]),
    ]
    results = by_id(await run_specs(specs, JSON_ANSWER, request_id="r"))
    assert set(results) == {"needs_off", "needs_never"}
    assert results["needs_off"].details["reason"] == "dependency 'off' is disabled"
    assert results["needs_never"].details["reason"] == (
        "dependency 'never' was not sampled for this request"
    )


async def test_run_mode_filter_and_prior_results() -> None:
    specs = [
        spec("json", "json_valid", run_mode="inline"),
        spec("schema", "json_schema", config={"schema": SCHEMA}, run_mode="queued",
             depends_on=["json"]),
    ]  # fmt: skip
    plan = validate_specs(specs)
    inline = await plan.run(JSON_ANSWER, request_id="r", run_mode="inline")
    assert [o.spec.id for o in inline] == ["json"]
    queued = await plan.run(JSON_ANSWER, request_id="r", run_mode="queued", prior=by_id(inline))
    assert [(o.spec.id, o.result.passed) for o in queued] == [("schema", True)]
    orphan = await plan.run(JSON_ANSWER, request_id="r", run_mode="queued")
    assert orphan[0].result.details["reason"] == (
        "dependency 'json' runs inline and has no result yet"
    )


async def test_retryable_errors_are_retried_and_their_cost_kept() -> None:
    flaky = Flaky(failures=1)
    outcomes = await run_specs(
        [spec("f", "flaky")], JSON_ANSWER, request_id="r", registry=registry_with(flaky)
    )
    result = outcomes[0].result
    assert (result.passed, result.cost_usd, result.details["attempts"]) == (
        True,
        Decimal("0.001"),
        2,
    )
    assert flaky.calls == 2


async def test_retries_stop_at_max_attempts() -> None:
    flaky = Flaky(failures=5)
    outcomes = await run_specs(
        [spec("f", "flaky")], JSON_ANSWER, request_id="r", registry=registry_with(flaky),
        max_attempts=3,
    )  # fmt: skip
    result = outcomes[0].result
    assert (result.error, result.cost_usd, result.details["attempts"]) == (
        "try again",
        Decimal("0.003"),
        3,
    )
    assert flaky.calls == 3


async def test_timeout_becomes_an_error_result() -> None:
    outcomes = await run_specs(
        [spec("s", "slow"), spec("fast", "json_valid")],
        JSON_ANSWER,
        request_id="r",
        registry=registry_with(Slow()),
        timeout_s=0.05,
    )
    results = by_id(outcomes)
    assert results["s"].error == "timed out after 0.05 s"
    assert results["fast"].passed


async def test_work_off_the_loop_is_bounded_by_the_budget_too() -> None:
    grinding = Grinding()
    try:
        outcomes = await run_specs(
            [spec("g", "grinding"), spec("fast", "json_valid")],
            JSON_ANSWER,
            request_id="r",
            registry=registry_with(grinding),
            timeout_s=0.05,
        )
    finally:
        grinding.release.set()  # the thread runs on until its work ends; let it end
    results = by_id(outcomes)
    assert results["g"].error == "timed out after 0.05 s"
    assert "attempts" not in results["g"].details  # a timeout is never retried
    assert results["fast"].passed


async def test_io_bound_evaluators_in_a_wave_run_concurrently() -> None:
    rendezvous = Rendezvous(parties=3)
    registry = registry_with(rendezvous)
    specs = [spec(f"r{i}", "rendezvous") for i in range(3)] + [spec("cheap", "json_valid")]
    # Run one after another, the first would wait forever and hit the timeout.
    outcomes = await run_specs(specs, JSON_ANSWER, request_id="r", registry=registry, timeout_s=2)
    assert [o.spec.id for o in outcomes] == ["r0", "r1", "r2", "cheap"]
    assert all(o.result.passed for o in outcomes)


async def test_cancellation_propagates() -> None:
    task = asyncio.ensure_future(
        run_specs([spec("s", "slow")], JSON_ANSWER, request_id="r", registry=registry_with(Slow()))
    )
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def outcome(weight: float, result: EvaluationResult) -> SpecOutcome:
    return SpecOutcome(spec("x", "json_valid", weight=weight), result, 0.0)


def test_overall_score_is_the_weighted_mean_of_counted_results() -> None:
    outcomes = [
        outcome(1.0, EvaluationResult(score=1.0, passed=True)),
        outcome(3.0, EvaluationResult(score=0.5, passed=True)),
        outcome(5.0, error_result("broken")),
        outcome(5.0, EvaluationResult(score=0.0, passed=False, skipped=True)),
        outcome(0.0, EvaluationResult(score=0.0, passed=False)),
    ]
    assert overall_score(outcomes) == pytest.approx((1.0 * 1 + 3.0 * 0.5) / 4)
    assert overall_score(outcomes[2:4]) is None
    assert overall_score([]) is None


def test_should_sample_is_deterministic_and_bounded() -> None:
    assert should_sample("req-1", "judge", 0.5) == should_sample("req-1", "judge", 0.5)
    assert all(should_sample(f"r{i}", "s", 1.0) for i in range(100))
    assert not any(should_sample(f"r{i}", "s", 0.0) for i in range(100))
    # A request sampled at a rate stays sampled at any higher rate.
    assert all(
        should_sample(f"r{i}", "s", 0.6) for i in range(1000) if should_sample(f"r{i}", "s", 0.3)
    )


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.3, 0.5, 0.9])
def test_should_sample_hits_the_rate_over_10k_ids(rate: float) -> None:
    hits = sum(should_sample(f"req-{i}", "judge", rate) for i in range(10_000))
    # Binomial std dev is at most 50 at n = 10,000; allow 5 of them.
    assert abs(hits - rate * 10_000) < 250


def test_should_sample_draws_independently_per_spec() -> None:
    both = sum(
        should_sample(f"req-{i}", "a", 0.5) and should_sample(f"req-{i}", "b", 0.5)
        for i in range(10_000)
    )
    assert abs(both - 2_500) < 250
