"""Model prices and the cost of a request: shipped defaults < SLUICE_CONFIG < the admin API.

A `PriceTable` is an immutable merge of those layers. Lookups try the exact model name, then
without a provider prefix (`openai/gpt-4o`), then without a date suffix (`gpt-4o-2024-08-06`,
`gpt-3.5-turbo-0125`). The price named "*" is the fallback for unlisted models; whether it is
used is the SLUICE_UNPRICED_MODELS policy's call, never this table's. Costs are integer ticks
(`gateway.budgets.money`), computed in Decimal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.budgets.money import price_ticks, tokens_cost
from gateway.budgets.prices import SHIPPED_PRICES
from gateway.proxy.stages import Usage

__all__ = [
    "FALLBACK_MODEL",
    "ModelPrice",
    "PriceTable",
    "check_model_name",
    "check_price",
    "prices_from_config",
    "shipped_prices",
]

FALLBACK_MODEL = "*"
MAX_MODEL_NAME = 200
MAX_PRICE = Decimal(1_000_000)  # USD per million tokens; anything above is a typo
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4})$")
_CACHE_LIMIT = 10_000  # model names come from client requests


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens; `cached_input` None means cached tokens cost the input price."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    max_output_tokens: int | None = None
    source: str = "default"
    """Where the price comes from: default, config or admin."""
    _input_ticks: Decimal = field(init=False, repr=False, compare=False)
    _cached_ticks: Decimal = field(init=False, repr=False, compare=False)
    _output_ticks: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cached = self.input if self.cached_input is None else self.cached_input
        object.__setattr__(self, "_input_ticks", price_ticks(self.input))
        object.__setattr__(self, "_cached_ticks", price_ticks(cached))
        object.__setattr__(self, "_output_ticks", price_ticks(self.output))

    def cost_ticks(self, usage: Usage) -> int:
        """What the upstream bills for `usage` (cached prompt tokens at the cached price)."""
        # Counts are checked where they are parsed (gateway.proxy.usage); guarded here as well,
        # so that no Usage, wherever it was built, can make a cost negative.
        prompt = max(usage.prompt_tokens, 0)
        cached = min(max(usage.cached_tokens, 0), prompt)
        amount = (
            (prompt - cached) * self._input_ticks
            + cached * self._cached_ticks
            + max(usage.completion_tokens, 0) * self._output_ticks
        )
        return tokens_cost(amount)

    def worst_case_ticks(self, prompt_tokens: int, output_tokens: int) -> int:
        """The most a request can cost: no cache hits, every allowed output token produced."""
        amount = prompt_tokens * self._input_ticks + output_tokens * self._output_ticks
        return tokens_cost(amount, worst_case=True)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def check_price(where: str, spec: Mapping[str, Any]) -> tuple[ModelPrice | None, list[str]]:
    """Validate one price entry (TOML table or JSON object); the price or the problems."""
    problems = []
    unknown = set(spec) - {"input", "cached_input", "output", "max_output_tokens"}
    if unknown:
        problems.append(
            f"{where} has unknown fields: {', '.join(sorted(unknown))} "
            "(known: input, cached_input, output, max_output_tokens)"
        )
    values: dict[str, Decimal | None] = {}
    for name in ("input", "cached_input", "output"):
        raw = spec.get(name)
        if raw is None:
            if name != "cached_input":
                problems.append(f"{where}.{name} is required (USD per million tokens)")
            values[name] = None
            continue
        number = _decimal(raw)
        if number is None or number < 0 or number > MAX_PRICE:
            problems.append(
                f"{where}.{name} must be a number of USD per million tokens, 0 to {MAX_PRICE}"
            )
        values[name] = number
    max_output = spec.get("max_output_tokens")
    if max_output is not None and (
        isinstance(max_output, bool) or not isinstance(max_output, int) or max_output < 1
    ):
        problems.append(f"{where}.max_output_tokens must be a whole number of at least 1")
    if problems:
        return None, problems
    input_, output = values["input"], values["output"]
    assert input_ is not None and output is not None
    return ModelPrice(input_, output, values["cached_input"], max_output), []


def check_model_name(name: str) -> str | None:
    """The problem with a model name used as a price key, or None."""
    if not name or len(name) > MAX_MODEL_NAME or name != name.strip():
        return f"model names are 1 to {MAX_MODEL_NAME} characters without surrounding spaces"
    return None


def prices_from_config(config: Mapping[str, Any]) -> tuple[dict[str, ModelPrice], list[str]]:
    """The `[pricing."model"]` tables of SLUICE_CONFIG, and every problem with them."""
    raw = config.get("pricing", {})
    if not isinstance(raw, dict):
        return {}, ['[pricing] must be a table of models: [pricing."gpt-4o"] input = ...']
    prices: dict[str, ModelPrice] = {}
    problems: list[str] = []
    for model, spec in raw.items():
        where = f'pricing."{model}"'
        if (problem := check_model_name(model)) is not None:
            problems.append(f"{where}: {problem}")
            continue
        if not isinstance(spec, dict):
            problems.append(f"[{where}] must be a table with input, output and cached_input")
            continue
        price, found = check_price(f"[{where}]", spec)
        problems += found
        if price is not None:
            prices[model] = _with_source(price, "config")
    return prices, problems


def _with_source(price: ModelPrice, source: str) -> ModelPrice:
    return ModelPrice(
        price.input, price.output, price.cached_input, price.max_output_tokens, source
    )


def shipped_prices() -> dict[str, ModelPrice]:
    return {
        model: ModelPrice(
            Decimal(input_), Decimal(output), None if cached is None else Decimal(cached), limit
        )
        for model, (input_, cached, output, limit) in SHIPPED_PRICES.items()
    }


class PriceTable:
    """An immutable price list: later layers win, whole entries at a time."""

    def __init__(self, layers: Iterable[Mapping[str, ModelPrice]]) -> None:
        merged: dict[str, ModelPrice] = {}
        for layer in layers:
            merged.update(layer)
        self.prices = merged
        self.fallback = merged.get(FALLBACK_MODEL)
        self._cache: dict[str, ModelPrice | None] = {}

    def lookup(self, model: str) -> ModelPrice | None:
        """The price of `model` (see the module docstring); None when it has none."""
        try:
            return self._cache[model]
        except KeyError:
            pass
        price = self._match(model)
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[model] = price
        return price

    def _match(self, model: str) -> ModelPrice | None:
        if model == FALLBACK_MODEL:
            return None
        candidates = [model, model.rsplit("/", 1)[-1]]
        candidates += [_DATE_SUFFIX.sub("", name) for name in candidates]
        for name in candidates:
            if name in self.prices:
                return self.prices[name]
        return None
