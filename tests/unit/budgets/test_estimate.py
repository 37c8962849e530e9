"""The worst-case estimate: exact prompt tokens, the output cap, absurd limits refused."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gateway.budgets.estimate import check_output_limit, estimate_chat, estimate_embeddings
from gateway.budgets.pricing import ModelPrice
from gateway.errors import InvalidRequest
from gateway.tokens.counting import count_chat_prompt, count_embedding_input, image_tokens

PRICE = ModelPrice(Decimal("0.15"), Decimal("0.60"), Decimal("0.075"), 16_384)
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]


def test_a_request_without_an_output_limit_gets_the_cap_written_into_its_body() -> None:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES}
    estimate = estimate_chat("gpt-4o-mini", body, PRICE, default_cap=1000)
    assert body["max_completion_tokens"] == 1000
    prompt = count_chat_prompt("gpt-4o-mini", MESSAGES)
    assert (estimate.prompt_tokens, estimate.output_tokens) == (prompt, 1000)
    assert estimate.cost_ticks == PRICE.worst_case_ticks(prompt, 1000)


def test_the_cap_never_exceeds_what_the_model_can_produce() -> None:
    body: dict[str, Any] = {"messages": MESSAGES}
    estimate_chat("gpt-4o-mini", body, PRICE, default_cap=100_000)
    assert body["max_completion_tokens"] == 16_384


def test_the_request_limit_is_kept_and_multiplied_by_n() -> None:
    body: dict[str, Any] = {"messages": MESSAGES, "max_tokens": 50, "n": 3}
    estimate = estimate_chat("gpt-4o-mini", body, PRICE, default_cap=1000)
    assert "max_completion_tokens" not in body
    assert estimate.output_tokens == 150


def test_with_both_limit_fields_the_larger_one_counts() -> None:
    body: dict[str, Any] = {"messages": MESSAGES, "max_tokens": 50, "max_completion_tokens": 80}
    assert estimate_chat("gpt-4o-mini", body, PRICE, default_cap=10).output_tokens == 80


@pytest.mark.parametrize("value", [0, -5, "100", 1.5, True])
def test_a_malformed_limit_is_a_400_naming_the_field(value: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        estimate_chat("gpt-4o-mini", {"messages": MESSAGES, "max_tokens": value}, PRICE, 10)
    assert caught.value.param == "max_tokens"


def test_a_limit_over_the_models_maximum_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_output_limit({"max_completion_tokens": 1_000_000}, "gpt-4o-mini", PRICE)
    assert caught.value.param == "max_completion_tokens"
    assert "at most 16384" in caught.value.message
    check_output_limit({"max_tokens": 16_384}, "gpt-4o-mini", PRICE)
    check_output_limit({"max_tokens": 1_000_000}, "unknown", None)  # no known maximum


def test_images_of_unknown_size_are_reserved_at_their_largest() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    small = {"type": "image_url", "image_url": {"url": "x", "detail": "low"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "what?"}, image, small]}]
    body: dict[str, Any] = {"messages": messages, "max_tokens": 1}
    estimate = estimate_chat("gpt-4o", body, PRICE, 10)
    counted = count_chat_prompt("gpt-4o", messages)
    assert estimate.prompt_tokens == counted + image_tokens("high", 2048, 768) - 765


def test_malformed_messages_are_a_400() -> None:
    with pytest.raises(InvalidRequest):
        estimate_chat("gpt-4o", {"messages": [{"role": "user", "content": 5}]}, PRICE, 10)


def test_embeddings_cost_their_input_tokens() -> None:
    price = ModelPrice(Decimal("0.02"), Decimal("0"))
    body = {"input": ["alpha beta", "gamma"]}
    estimate = estimate_embeddings("text-embedding-3-small", body, price)
    tokens = count_embedding_input("text-embedding-3-small", ["alpha beta", "gamma"])
    assert (estimate.prompt_tokens, estimate.output_tokens) == (tokens, 0)
