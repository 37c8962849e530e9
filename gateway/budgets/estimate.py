"""The worst case a request can cost, computed before it is forwarded.

Prompt tokens are counted exactly, offline, the way OpenAI bills them (`gateway.tokens`). Output
is bounded by the request's `max_completion_tokens` / `max_tokens` times `n`; a budgeted request
that sets neither gets the configured cap written into the body it forwards, so the bound holds.
A limit above what the model can produce is refused here, before anything is reserved.

Images of unknown size are counted at their largest possible tile count (the counter bills them
as 1024x1024), so the reservation covers any size. Audio and file parts cannot be sized before
the upstream reads them; they are not covered by the estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.budgets.pricing import ModelPrice
from gateway.errors import InvalidRequest
from gateway.tokens.counting import (
    ASSUMED_IMAGE_SIZE,
    count_chat_prompt,
    count_embedding_input,
    image_tokens,
)

__all__ = ["Estimate", "check_output_limit", "estimate_chat", "estimate_embeddings"]

CAP_FIELD = "max_completion_tokens"
_OUTPUT_FIELDS = ("max_completion_tokens", "max_tokens")
# The most tiles a high-detail image can cover: 2048x768 after OpenAI's scaling is 4x2 tiles.
_IMAGE_MARGIN = image_tokens("high", 2048, 768) - image_tokens("high", *ASSUMED_IMAGE_SIZE)


@dataclass(frozen=True, slots=True)
class Estimate:
    prompt_tokens: int
    output_tokens: int
    cost_ticks: int


def _requested_output(body: Mapping[str, Any]) -> int | None:
    """The output limit the request sets (the larger, if it sets both), validated."""
    found = None
    for name in _OUTPUT_FIELDS:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"'{name}' must be a whole number of at least 1.", param=name)
        found = value if found is None else max(found, value)
    return found


def check_output_limit(body: Mapping[str, Any], model: str, price: ModelPrice | None) -> None:
    """Refuse an output limit above what `model` can produce (400 naming the field)."""
    requested = _requested_output(body)
    limit = price.max_output_tokens if price is not None else None
    if requested is None or limit is None or requested <= limit:
        return
    name = next(n for n in _OUTPUT_FIELDS if body.get(n) == requested)
    raise InvalidRequest(
        f"'{name}' is {requested}, but {model} produces at most {limit} output tokens.",
        param=name,
    )


def _choices(body: Mapping[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1


def _image_parts(messages: list[Any]) -> int:
    count = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    image = part.get("image_url")
                    detail = image.get("detail") if isinstance(image, dict) else None
                    count += detail != "low"
    return count


def estimate_chat(
    model: str, body: dict[str, Any], price: ModelPrice, default_cap: int
) -> Estimate:
    """The worst case of a chat request; sets the output cap in `body` when it has none."""
    output = _requested_output(body)
    if output is None:
        output = default_cap
        if price.max_output_tokens is not None:
            output = min(output, price.max_output_tokens)
        body[CAP_FIELD] = output
    messages = body.get("messages") or []
    try:
        prompt = count_chat_prompt(model, messages, body.get("tools"), body.get("functions"))
    except (AttributeError, KeyError, TypeError, ValueError):
        raise InvalidRequest(
            "The request's messages or tools are malformed: each message must be an object "
            "with a role and content, each tool an object with a function.",
            param="messages",
        ) from None
    prompt += _IMAGE_MARGIN * _image_parts(messages)
    output *= _choices(body)
    return Estimate(prompt, output, price.worst_case_ticks(prompt, output))


def estimate_embeddings(model: str, body: Mapping[str, Any], price: ModelPrice) -> Estimate:
    try:
        prompt = count_embedding_input(model, body.get("input") or "")
    except (TypeError, ValueError):
        raise InvalidRequest(
            "'input' must be a string, a list of strings, or token ids.", param="input"
        ) from None
    return Estimate(prompt, 0, price.worst_case_ticks(prompt, 0))
