"""The Responses API's side of the proxy: request shape, prompt application, usage, stream.

Usage comes as `input_tokens` / `output_tokens` with `input_tokens_details.cached_tokens` and
`output_tokens_details.reasoning_tokens`; it is checked by the same rules as chat's
(gateway.proxy.usage). A stream is typed events (`event: response.output_text.delta`, ...)
passed through one by one; it ends with `response.completed` (or `.incomplete`, `.failed`,
`error`), which carries the usage and the whole response. It has no `[DONE]`.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from gateway.errors import InvalidRequest
from gateway.proxy.generation import GenerationFields, Reply, StreamReader
from gateway.proxy.sse import MalformedStream, StreamFacts, event_data
from gateway.proxy.stages import ResolvedPrompt, Usage
from gateway.proxy.usage import UsageCheck, UsageFields
from gateway.requestlog.outputs import responses_output_text
from gateway.tokens.counting import count_text
from gateway.tokens.responses_input import count_responses_input

__all__ = ["RESPONSES", "ResponsesGeneration", "ResponsesStream"]

# A version's chat-style output limits mean the Responses API's one.
_OUTPUT_LIMITS = ("max_tokens", "max_completion_tokens")
_INSTRUCTION_ROLES = frozenset({"system", "developer"})
_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponsesUsage(msgspec.Struct):
    input_tokens: Any = 0
    output_tokens: Any = 0
    total_tokens: Any = None
    input_tokens_details: Any = None
    output_tokens_details: Any = None

    def check(self) -> UsageCheck:
        return UsageFields(
            prompt_tokens=self.input_tokens,
            completion_tokens=self.output_tokens,
            total_tokens=self.total_tokens,
            prompt_tokens_details=self.input_tokens_details,
            completion_tokens_details=self.output_tokens_details,
        ).check()


class _Response(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    usage: ResponsesUsage | None = None


class _Event(msgspec.Struct):
    type: str = ""
    delta: Any = None
    response: _Response | None = None
    item: dict[str, Any] | None = None


_decode_event = msgspec.json.Decoder(_Event).decode


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = [p.get("text") for p in content or () if isinstance(p, dict)]
    return "\n".join(p for p in parts if isinstance(p, str))


def _call_text(items: Any) -> str:
    """Function calls' names and arguments, counted as output like chat's tool calls."""
    return "".join(
        (item.get("name") or "") + (item.get("arguments") or "")
        for item in items or ()
        if isinstance(item, dict) and item.get("type") == "function_call"
    )


class ResponsesGeneration:
    endpoint = "responses"
    path = "/responses"
    stream_usage_option = False  # every Responses stream ends with its usage

    def check(self, body: dict[str, Any], fields: GenerationFields) -> None:
        value = body.get("input")
        if value is not None and not isinstance(value, str | list):
            raise InvalidRequest(
                "The 'input' field must be a string or a list of input items.", param="input"
            )
        if isinstance(value, list) and not all(isinstance(item, dict) for item in value):
            raise InvalidRequest("Each item of 'input' must be an object.", param="input")
        instructions = body.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise InvalidRequest("The 'instructions' field must be a string.", param="instructions")

    def accept_prompt(self) -> None:
        pass

    def apply_prompt(self, body: dict[str, Any], resolved: ResolvedPrompt) -> None:
        """System (and developer) messages become `instructions`, before the client's own;
        the others are prepended to `input`; the version's model and params win."""
        instructions = [
            _text_of(m.get("content"))
            for m in resolved.messages
            if m.get("role") in _INSTRUCTION_ROLES
        ]
        if isinstance(body.get("instructions"), str) and body["instructions"]:
            instructions.append(body["instructions"])
        if instructions:
            body["instructions"] = "\n\n".join(instructions)
        given = body.get("input")
        items = [{"role": "user", "content": given}] if isinstance(given, str) else given or []
        prepended = [m for m in resolved.messages if m.get("role") not in _INSTRUCTION_ROLES]
        body["input"] = prepended + list(items)
        if resolved.model:
            body["model"] = resolved.model
        params = dict(resolved.params)
        for name in _OUTPUT_LIMITS:
            if name in params:
                params["max_output_tokens"] = params.pop(name)
        body.update(params)

    def read_reply(self, body: Any) -> tuple[Reply, UsageCheck | None]:
        response = msgspec.convert(body, _Response)
        check = response.usage.check() if response.usage is not None else None
        return Reply(id=response.id, model=response.model), check

    def summarize(self, body: Any) -> tuple[Any, str | None]:
        return body, responses_output_text(body)

    def counted_usage(self, model: str, sent: dict[str, Any], output: str) -> Usage:
        prompt = count_responses_input(
            model, sent.get("instructions"), sent.get("input"), sent.get("tools")
        )
        return Usage(prompt, count_text(model, output), estimated=True)

    def estimated_usage(self, model: str, sent: dict[str, Any], answer: Any) -> Usage | None:
        try:
            output = (responses_output_text(answer) or "") + _call_text(answer.get("output"))
            return self.counted_usage(model, sent, output)
        except (AttributeError, KeyError, TypeError, ValueError):
            return None

    def open_stream(self, client_wants_usage: bool) -> StreamReader:
        return ResponsesStream()

    def stream_error(self, message: str) -> bytes:
        """An `error` event, as the Responses API ends a stream that failed."""
        event = {"type": "error", "code": "upstream_error", "message": message, "param": None}
        return b"event: error\ndata: " + msgspec.json.encode(event) + b"\n\n"


class ResponsesStream(StreamFacts):
    """What a Responses stream said so far: text deltas, finished items, the final response."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[dict[str, Any]] = []
        self.final: Any = None

    def feed(self, event: bytes) -> bytes | None:
        data = event_data(event)
        if data is None:
            return event  # comments and keep-alives pass through
        try:
            parsed = _decode_event(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise MalformedStream(f"the upstream sent an event that is not one: {exc}") from None
        if self.first_event_at is None:
            self.first_event_at = time.perf_counter()
        kind = parsed.type
        if kind == "response.output_text.delta" and isinstance(parsed.delta, str):
            self.parts.append(parsed.delta)
        elif kind == "response.output_item.done" and parsed.item is not None:
            self.items.append(parsed.item)
        response = parsed.response
        if response is not None:
            self.response_id = self.response_id or response.id
            self.model = response.model or self.model
        if kind in _FINAL_EVENTS or kind == "error":
            self.done = True
            if response is not None and response.usage is not None:
                checked = response.usage.check()
                self.usage, self.usage_problems = checked.usage, checked.problems
            # The whole final response is what the log keeps; decoded once, at the end.
            self.final = msgspec.json.decode(data).get("response")
        return event

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def output_text(self) -> str:
        return self.text + _call_text(self.items)

    def as_logged(self) -> dict[str, Any]:
        if isinstance(self.final, dict):
            return self.final
        # Cut short (client gone, upstream failed): what arrived, as an incomplete response.
        part = {"type": "output_text", "text": self.text, "annotations": []}
        message = {"type": "message", "role": "assistant", "content": [part]}
        body: dict[str, Any] = {"id": self.response_id, "object": "response",
                                "model": self.model, "status": "incomplete",
                                "output": list(self.items)}  # fmt: skip
        if self.parts and not any(item.get("type") == "message" for item in self.items):
            body["output"].append(message)
        if self.usage is not None:
            body["usage"] = {"input_tokens": self.usage.prompt_tokens,
                             "output_tokens": self.usage.completion_tokens}  # fmt: skip
        return body


RESPONSES = ResponsesGeneration()
