"""Prices and costs: the shipped table, lookups, exact Decimal costs, config validation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.budgets.money import from_ticks, to_ticks
from gateway.budgets.pricing import (
    ModelPrice,
    PriceTable,
    check_price,
    prices_from_config,
    shipped_prices,
)
from gateway.proxy.stages import Usage

MINI = ModelPrice(Decimal("0.15"), Decimal("0.60"), Decimal("0.075"), 16_384)


def test_cost_is_exact_to_the_token() -> None:
    # 1234 prompt tokens (200 of them cached) and 567 completion tokens on gpt-4o-mini:
    # 1034 * 0.15 + 200 * 0.075 + 567 * 0.60 = 155.1 + 15 + 340.2 = 510.3 USD per million.
    usage = Usage(prompt_tokens=1234, completion_tokens=567, cached_tokens=200)
    assert from_ticks(MINI.cost_ticks(usage)) == Decimal("0.0005103")


def test_cached_tokens_cost_the_input_price_without_a_cached_price() -> None:
    price = ModelPrice(Decimal("30"), Decimal("60"))
    usage = Usage(prompt_tokens=10, completion_tokens=0, cached_tokens=10)
    assert from_ticks(price.cost_ticks(usage)) == Decimal("0.0003")


def test_worst_case_rounds_up_and_settled_cost_rounds_half_up() -> None:
    price = ModelPrice(Decimal("0.00001"), Decimal("0"))  # 0.1 tick per token
    assert price.worst_case_ticks(1, 0) == 1
    assert price.cost_ticks(Usage(4, 0)) == 0
    assert price.cost_ticks(Usage(5, 0)) == 1


def test_ticks_round_trip_and_never_print_in_exponent_form() -> None:
    assert to_ticks(Decimal("0.0000000001")) == 1
    assert from_ticks(1) == Decimal("1E-10")
    assert str(from_ticks(1)) == "1E-10"  # why headers and logs format with "f"
    assert f"{from_ticks(1):f}" == "0.0000000001"
    assert to_ticks(Decimal("100000000")) == 10**18


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # the older snapshot has its own price
        ("openai/gpt-4.1", "gpt-4.1"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("text-embedding-3-small", "text-embedding-3-small"),
    ],
)
def test_lookup_finds_snapshots_and_prefixed_names(model: str, expected: str) -> None:
    table = PriceTable([shipped_prices()])
    assert table.lookup(model) == table.prices[expected]


@pytest.mark.parametrize("model", ["gpt-4o-audio-preview", "ft:gpt-4o-mini:org::x", "llama-3", "*"])
def test_unlisted_models_have_no_price(model: str) -> None:
    assert PriceTable([shipped_prices()]).lookup(model) is None


def test_later_layers_win_whole_entries_and_star_is_the_fallback() -> None:
    config = {
        "gpt-4o": ModelPrice(Decimal("1"), Decimal("2"), source="config"),
        "*": ModelPrice(Decimal("5"), Decimal("7"), source="config"),
    }
    admin = {"gpt-4o": ModelPrice(Decimal("3"), Decimal("4"), source="admin")}
    table = PriceTable([shipped_prices(), config, admin])
    price = table.lookup("gpt-4o-2024-11-20")
    assert price is not None
    assert (price.input, price.cached_input, price.source) == (Decimal("3"), None, "admin")
    assert table.fallback == config["*"]
    assert table.lookup("unknown-model") is None  # the fallback is the policy's call


def test_every_shipped_price_is_valid() -> None:
    for model, price in shipped_prices().items():
        fields = {
            "input": price.input,
            "cached_input": price.cached_input,
            "output": price.output,
            "max_output_tokens": price.max_output_tokens,
        }
        assert check_price(model, fields)[1] == [], model


def test_config_prices_are_parsed_and_every_problem_is_reported() -> None:
    prices, problems = prices_from_config(
        {
            "pricing": {
                "fake-chat": {"input": 1, "cached_input": 0.5, "output": 2.25},
                "bad": {"input": -1, "output": "x", "colour": "red"},
                "no-output": {"input": 1},
                "huge": {"input": 1, "output": 1, "max_output_tokens": 0},
                "not-a-table": 3,
            }
        }
    )
    assert prices["fake-chat"] == ModelPrice(
        Decimal("1"), Decimal("2.25"), Decimal("0.5"), source="config"
    )
    text = "\n".join(problems)
    assert "unknown fields: colour" in text
    assert '[pricing."bad"].input must be a number' in text
    assert '[pricing."bad"].output must be a number' in text
    assert '[pricing."no-output"].output is required' in text
    assert "max_output_tokens must be a whole number" in text
    assert '[pricing."not-a-table"] must be a table' in text
    assert set(prices) == {"fake-chat"}


def test_float_prices_from_toml_keep_their_written_digits() -> None:
    prices, problems = prices_from_config({"pricing": {"m": {"input": 0.1, "output": 0.3}}})
    assert problems == []
    assert prices["m"].input == Decimal("0.1")
    assert from_ticks(prices["m"].cost_ticks(Usage(3, 1))) == Decimal("0.0000006")


@pytest.mark.parametrize(
    "usage",
    [
        Usage(prompt_tokens=-1_000_000, completion_tokens=5),
        Usage(prompt_tokens=10, completion_tokens=-1_000_000_000),
        Usage(prompt_tokens=-10, completion_tokens=-5, cached_tokens=-10),
    ],
)
def test_a_cost_is_never_negative_whatever_usage_it_is_given(usage: Usage) -> None:
    """The parser checks usage; the cost function guards as well, for any Usage built elsewhere."""
    honest = Usage(max(usage.prompt_tokens, 0), max(usage.completion_tokens, 0))
    assert MINI.cost_ticks(usage) == MINI.cost_ticks(honest) >= 0
