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
from gateway.tokens.responses_input import count_responses_input

__all__ = [
    "Estimate",
    "check_output_limit",
    "estimate_chat",
    "estimate_completions",
    "estimate_embeddings",
    "estimate_request",
    "estimate_responses",
]

CAP_FIELD = "max_completion_tokens"
_OUTPUT_FIELDS = ("max_completion_tokens", "max_tokens")
# The Responses API's one output limit; legacy completions' limit defaults to 16, as OpenAI's.
_RESPONSES_FIELDS = ("max_output_tokens",)
_LEGACY_FIELDS = ("max_tokens",)
LEGACY_DEFAULT_MAX_TOKENS = 16
_FIELDS_OF = {"responses": _RESPONSES_FIELDS, "completions": _LEGACY_FIELDS}
# The most tiles a high-detail image can cover: 2048x768 after OpenAI's scaling is 4x2 tiles.
_IMAGE_MARGIN = image_tokens("high", 2048, 768) - image_tokens("high", *ASSUMED_IMAGE_SIZE)


@dataclass(frozen=True, slots=True)
class Estimate:
    prompt_tokens: int
    output_tokens: int
    cost_ticks: int


def _requested_output(
    body: Mapping[str, Any], fields: tuple[str, ...] = _OUTPUT_FIELDS
) -> int | None:
    """The output limit the request sets (the larger, if it sets both), validated."""
    found = None
    for name in fields:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"'{name}' must be a whole number of at least 1.", param=name)
        found = value if found is None else max(found, value)
    return found


def check_output_limit(
    body: Mapping[str, Any],
    model: str,
    price: ModelPrice | None,
    endpoint: str = "chat.completions",
) -> None:
    """Refuse an output limit above what `model` can produce (400 naming the field)."""
    if endpoint == "embeddings":
        return
    fields = _FIELDS_OF.get(endpoint, _OUTPUT_FIELDS)
    requested = _requested_output(body, fields)
    limit = price.max_output_tokens if price is not None else None
    if requested is None or limit is None or requested <= limit:
        return
    name = next(n for n in fields if body.get(n) == requested)
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


def estimate_responses(
    model: str, body: dict[str, Any], price: ModelPrice, default_cap: int
) -> Estimate:
    """The worst case of a Responses API request; sets `max_output_tokens` when it has none.

    The conversation a `previous_response_id` carries lives upstream: its tokens are not
    covered by the estimate (the settlement bills them from the upstream's usage)."""
    output = _requested_output(body, _RESPONSES_FIELDS)
    if output is None:
        output = default_cap
        if price.max_output_tokens is not None:
            output = min(output, price.max_output_tokens)
        body["max_output_tokens"] = output
    try:
        prompt = count_responses_input(
            model, body.get("instructions"), body.get("input"), body.get("tools")
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        raise InvalidRequest(
            "The request's input or tools are malformed: 'input' must be a string or a list "
            "of input items, each tool an object with a type.",
            param="input",
        ) from None
    images = [item for item in _list(body.get("input")) if isinstance(item, dict)]
    parts = sum(
        1
        for item in images
        for part in _list(item.get("content"))
        if isinstance(part, dict)
        and part.get("type") == "input_image"
        and part.get("detail") != "low"
    )
    prompt += _IMAGE_MARGIN * parts
    return Estimate(prompt, output, price.worst_case_ticks(prompt, output))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def estimate_completions(model: str, body: Mapping[str, Any], price: ModelPrice) -> Estimate:
    """The worst case of a legacy completion: `max_tokens` (default 16) for every one of the
    `max(n, best_of)` candidates of every prompt."""
    prompt_field = body.get("prompt")
    try:
        prompt = count_embedding_input(model, prompt_field if prompt_field is not None else "")
    except (TypeError, ValueError):
        raise InvalidRequest(
            "'prompt' must be a string, a list of strings, or token ids.", param="prompt"
        ) from None
    output = _requested_output(body, _LEGACY_FIELDS) or LEGACY_DEFAULT_MAX_TOKENS
    best_of = body.get("best_of")
    candidates = max(_choices(body), best_of if isinstance(best_of, int) and best_of > 1 else 1)
    prompts = 1
    if isinstance(prompt_field, list) and prompt_field and not isinstance(prompt_field[0], int):
        prompts = len(prompt_field)
    output *= candidates * prompts
    return Estimate(prompt, output, price.worst_case_ticks(prompt, output))


def estimate_request(
    endpoint: str, model: str, body: dict[str, Any], price: ModelPrice, default_cap: int
) -> Estimate:
    """The worst case of a request to `endpoint` (the request log's endpoint name)."""
    if endpoint == "chat.completions":
        return estimate_chat(model, body, price, default_cap)
    if endpoint == "responses":
        return estimate_responses(model, body, price, default_cap)
    if endpoint == "completions":
        return estimate_completions(model, body, price)
    return estimate_embeddings(model, body, price)
