"""The request-cost checks: latency_max and cost_max."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from evaluators.base import EvaluationInput, EvaluatorConfigError
from evaluators.performance import CostMax, LatencyMax


def given(latency_ms: float | None = None, cost_usd: Decimal | None = None) -> EvaluationInput:
    return EvaluationInput(request={}, response_text="", latency_ms=latency_ms, cost_usd=cost_usd)


@pytest.mark.parametrize(("latency", "passed"), [(99.9, True), (100.0, True), (100.1, False)])
async def test_latency_max_is_inclusive(latency: float, passed: bool) -> None:
    evaluator = LatencyMax()
    result = await evaluator.evaluate(evaluator.validate_config({"ms": 100}), given(latency))
    assert result.passed is passed
    assert result.details == {"latency_ms": latency, "max_ms": 100.0}


async def test_latency_max_without_latency_is_an_error() -> None:
    evaluator = LatencyMax()
    result = await evaluator.evaluate(evaluator.validate_config({"ms": 100}), given())
    assert result.error == "latency was not recorded for this request"


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({}, "ms: is required"),
        ({"ms": 0}, "ms: is required and must be a number greater than 0"),
        ({"ms": -5}, "ms: must be at least 0"),
        ({"ms": "100"}, "ms: expected a number, got a string"),
        ({"ms": float("inf")}, "ms: must be a finite number"),
        ({"milliseconds": 5}, "unknown config field 'milliseconds'"),
    ],
)
def test_latency_max_config_errors(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(EvaluatorConfigError) as caught:
        LatencyMax().validate_config(config)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("usd", "cost", "passed"),
    [
        ("0.0015", Decimal("0.0015"), True),
        ("0.0015", Decimal("0.00150001"), False),
        # A float budget is read from its shortest decimal form: 0.1 means exactly 0.1.
        (0.1, Decimal("0.1"), True),
        (0, Decimal(0), True),
        (1, Decimal("0.99"), True),
    ],
)
async def test_cost_max_compares_exact_decimals(usd: Any, cost: Decimal, passed: bool) -> None:
    evaluator = CostMax()
    result = await evaluator.evaluate(evaluator.validate_config({"usd": usd}), given(cost_usd=cost))
    assert result.passed is passed


async def test_cost_max_details_and_unknown_cost() -> None:
    evaluator = CostMax()
    config = evaluator.validate_config({"usd": "0.01"})
    result = await evaluator.evaluate(config, given(cost_usd=Decimal("0.002")))
    assert result.details == {"cost_usd": "0.002", "max_usd": "0.01"}
    unknown = await evaluator.evaluate(config, given())
    assert unknown.error == "cost is unknown for this request"


@pytest.mark.parametrize(
    ("usd", "fragment"),
    [
        (None, "usd: is required"),
        ("cheap", "usd: not a decimal number: 'cheap'"),
        (-0.5, "usd: must be a finite amount ≥ 0"),
        ("NaN", "usd: must be a finite amount ≥ 0"),
        (True, "usd: expected a number or a decimal string, got a boolean"),
    ],
)
def test_cost_max_config_errors(usd: Any, fragment: str) -> None:
    with pytest.raises(EvaluatorConfigError) as caught:
        CostMax().validate_config({"usd": usd})
    assert fragment in str(caught.value)
