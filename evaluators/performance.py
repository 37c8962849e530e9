"""Built-in checks on what a request cost: latency_max and cost_max."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from evaluators.base import (
    EvaluationInput,
    EvaluationResult,
    EvaluatorConfigError,
    check_result,
    error_result,
)
from evaluators.config import ConfigReader, json_type_name


@dataclass(frozen=True, slots=True)
class LatencyConfig:
    max_ms: float


class LatencyMax:
    """The request completed within a latency budget.

    Config:
    - ``ms`` (number > 0, required): the maximum latency in milliseconds, inclusive.

    Score 1 or 0; an error when the request's latency was not recorded.
    """

    key: ClassVar[str] = "latency_max"
    version: ClassVar[str] = "1"
    default_threshold: ClassVar[float] = 1.0
    awaits_io: ClassVar[bool] = False

    def validate_config(self, config: Mapping[str, Any]) -> LatencyConfig:
        reader = ConfigReader(config, ("ms",))
        max_ms = reader.optional_number("ms", minimum=0)
        if max_ms is None or max_ms == 0:
            raise EvaluatorConfigError("is required and must be a number greater than 0", "ms")
        return LatencyConfig(max_ms)

    async def evaluate(self, config: LatencyConfig, data: EvaluationInput) -> EvaluationResult:
        if data.latency_ms is None:
            return error_result("latency was not recorded for this request")
        return check_result(
            data.latency_ms <= config.max_ms,
            {"latency_ms": data.latency_ms, "max_ms": config.max_ms},
        )


@dataclass(frozen=True, slots=True)
class CostConfig:
    max_usd: Decimal


class CostMax:
    """The request cost no more than a budget.

    Config:
    - ``usd`` (number or decimal string ≥ 0, required): the maximum cost in US dollars,
      inclusive. A string such as ``"0.0015"`` is read exactly; a number is read from its
      shortest decimal form, so ``0.1`` means exactly 0.1.

    Score 1 or 0; an error when the request's cost is unknown (e.g. an unpriced model).
    """

    key: ClassVar[str] = "cost_max"
    version: ClassVar[str] = "1"
    default_threshold: ClassVar[float] = 1.0
    awaits_io: ClassVar[bool] = False

    def validate_config(self, config: Mapping[str, Any]) -> CostConfig:
        raw = ConfigReader(config, ("usd",)).raw("usd")
        if raw is None:
            raise EvaluatorConfigError("is required: the maximum cost in US dollars", "usd")
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise EvaluatorConfigError(
                f"expected a number or a decimal string, got {json_type_name(raw)}", "usd"
            )
        try:
            # str() first: Decimal(0.1) is 0.1000000000000000055…, str(0.1) is "0.1".
            usd = Decimal(str(raw).strip())
        except InvalidOperation:
            raise EvaluatorConfigError(f"not a decimal number: {raw!r}", "usd") from None
        if not usd.is_finite() or usd < 0:
            raise EvaluatorConfigError(f"must be a finite amount ≥ 0, got {raw!r}", "usd")
        return CostConfig(usd)

    async def evaluate(self, config: CostConfig, data: EvaluationInput) -> EvaluationResult:
        if data.cost_usd is None:
            return error_result("cost is unknown for this request")
        return check_result(
            data.cost_usd <= config.max_usd,
            {"cost_usd": str(data.cost_usd), "max_usd": str(config.max_usd)},
        )
