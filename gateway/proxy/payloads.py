"""The bodies on the request path: decoding and validating what clients send, shaping what
the request log keeps, and billing answers that carry no usage."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from gateway.errors import InvalidRequest
from gateway.errors import describe_validation_error as _describe
from gateway.input_bounds import decode_json
from gateway.proxy.sse import UsageFields
from gateway.proxy.stages import ResolvedPrompt, Settlement, Usage
from gateway.requestlog.entry import LogEntry
from gateway.tokens.counting import count_chat_prompt, count_embedding_input, count_text

_T = TypeVar("_T")

# Body fields that would let a client pick the upstream or its credentials: never honoured,
# never forwarded.
FORBIDDEN_FIELDS = frozenset(
    {"api_key", "api_base", "base_url", "azure_endpoint", "api_version", "organization",
     "extra_headers", "headers", "upstream", "upstream_url", "proxy", "custom_llm_provider"}
)  # fmt: skip


class ChatFields(msgspec.Struct):
    model: str | None = None
    messages: list[dict[str, Any]] = []
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    functions: list[dict[str, Any]] | None = None


class EmbeddingFields(msgspec.Struct):
    model: str
    input: str | list[Any]


class ModerationFields(msgspec.Struct):
    input: str | list[Any] | None = None
    model: str | None = None


class CompletionFields(msgspec.Struct):
    model: str | None = None
    usage: UsageFields | None = None


def decode_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidRequest("The request body is empty: send a JSON object.")
    body = decode_json(raw)
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def convert_body(body: dict[str, Any], kind: type[_T]) -> _T:
    try:
        return msgspec.convert(body, kind)
    except msgspec.ValidationError as exc:
        message, param = _describe(exc)
        raise InvalidRequest(f"Invalid request: {message}.", param=param) from None


def strip_forbidden(body: dict[str, Any]) -> None:
    for name in FORBIDDEN_FIELDS.intersection(body):
        del body[name]


def apply_prompt(body: dict[str, Any], resolved: ResolvedPrompt) -> None:
    body["messages"] = resolved.messages + list(body.get("messages") or [])
    if resolved.model:
        body["model"] = resolved.model
    body.update(resolved.params)


def record_prompt(entry: LogEntry, resolved: ResolvedPrompt) -> None:
    entry.prompt_slug = resolved.slug
    entry.prompt_version = resolved.version
    entry.prompt_version_id = resolved.version_id
    entry.ab_test_id = resolved.ab_test_id
    entry.ab_variant = resolved.ab_variant
    entry.variables = resolved.variables


def prompt_headers(entry: LogEntry, headers: dict[str, str]) -> None:
    if entry.prompt_slug is not None:
        headers["x-sluice-prompt-version"] = f"{entry.prompt_slug}@{entry.prompt_version}"
        if entry.ab_variant is not None:
            headers["x-sluice-ab-variant"] = entry.ab_variant


def usage_into(entry: LogEntry, usage: Usage | None) -> None:
    if usage is None:
        return
    entry.prompt_tokens = usage.prompt_tokens
    entry.completion_tokens = usage.completion_tokens
    entry.total_tokens = usage.total_tokens
    entry.cached_tokens = usage.cached_tokens
    entry.usage_estimated = usage.estimated


def settlement_into(
    entry: LogEntry,
    headers: dict[str, str] | None,
    settlement: Settlement | None,
    *,
    with_cost: bool,
) -> None:
    if settlement is None:
        return
    entry.cost_usd = settlement.cost_usd
    if headers is not None:
        if with_cost and settlement.cost_usd is not None:
            headers["x-sluice-cost-usd"] = format_usd(settlement.cost_usd)
        if settlement.remaining_usd is not None:
            headers["x-sluice-budget-remaining-usd"] = format_usd(settlement.remaining_usd)


def format_usd(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


def estimated_usage(endpoint: str, model: str, payload: bytes, response: Any) -> Usage | None:
    """Usage counted with tiktoken, for a 200 answer that carries none."""
    try:
        sent = msgspec.json.decode(payload)
        if endpoint != "chat.completions":
            return Usage(count_embedding_input(model, sent["input"]), 0, estimated=True)
        prompt = count_chat_prompt(
            model, sent["messages"], sent.get("tools"), sent.get("functions")
        )
        parts = []
        for choice in response.get("choices") or ():
            message = choice.get("message") or {}
            parts.append(message.get("content") or "")
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                parts += [function.get("name") or "", function.get("arguments") or ""]
        return Usage(prompt, count_text(model, "".join(parts)), estimated=True)
    except (AttributeError, KeyError, TypeError, ValueError, msgspec.DecodeError):
        return None


def upstream_error_body(body: bytes) -> tuple[Any, str]:
    try:
        parsed = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return {"raw": body[:2000].decode("utf-8", "replace")}, "upstream_error"
    error = parsed.get("error") if isinstance(parsed, dict) else None
    code = None
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
    return parsed, str(code) if code else "upstream_error"


def chat_output(body: Any) -> tuple[Any, str | None]:
    try:
        return body, body["choices"][0]["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        return body, None


def embedding_summary(body: Any) -> tuple[Any, str | None]:
    """Vectors are not logged (they are large and the caller has them): their shape is."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return body, None
    return {**body, "data": [_vector_shape(item) for item in body["data"]]}, None


def _vector_shape(item: Any) -> Any:
    if not isinstance(item, dict):
        return None
    vector = item.get("embedding")
    # base64 (what the openai SDK asks for by default) packs float32s: 4 bytes each
    dimensions = len(vector) if isinstance(vector, list) else len(vector or "") * 3 // 4 // 4
    return {"index": item.get("index"), "dimensions": dimensions}
