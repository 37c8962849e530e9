"""Reading an OpenAI chat stream as it passes through: split events, keep what the log needs.

The relay forwards every event unchanged, except the dedicated usage chunk (`choices: []`)
that the gateway asked for on the client's behalf. Each event is decoded once with a msgspec
Struct that names only the fields we act on.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from gateway.proxy.stages import Usage
from gateway.proxy.usage import UsageFields

__all__ = [
    "MalformedStream",
    "StreamFacts",
    "StreamState",
    "UsageFields",
    "event_data",
    "split_events",
]


class MalformedStream(Exception):
    pass


class _ToolCallDelta(msgspec.Struct):
    index: int = 0
    id: str | None = None
    function: dict[str, Any] | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    tool_calls: list[_ToolCallDelta] | None = None


class _Choice(msgspec.Struct):
    index: int = 0
    delta: _Delta | None = None
    text: str | None = None
    """Legacy completions stream text here instead of in a delta."""
    finish_reason: str | None = None


class _Chunk(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    choices: list[_Choice] = []
    usage: UsageFields | None = None


_decode_chunk = msgspec.json.Decoder(_Chunk).decode


def split_events(pending: bytes, max_event: int | None = None) -> tuple[list[bytes], bytes]:
    """Complete events (each ending in a blank line) and the unfinished rest; MalformedStream
    when an event, finished or not, is longer than `max_event` bytes."""
    if b"\r" in pending:
        pending = pending.replace(b"\r\n", b"\n")
    events = []
    start = 0
    while (end := pending.find(b"\n\n", start)) != -1:
        if max_event is not None and end + 2 - start > max_event:
            raise _event_too_large(max_event)
        events.append(pending[start : end + 2])
        start = end + 2
    if max_event is not None and len(pending) - start > max_event:
        raise _event_too_large(max_event)
    return events, pending[start:]


def _event_too_large(limit: int) -> MalformedStream:
    return MalformedStream(
        f"the upstream answer was too large: an event of more than {limit} bytes "
        "(SLUICE_UPSTREAM_MAX_EVENT_BYTES)"
    )


def event_data(event: bytes) -> bytes | None:
    """The payload of an SSE event's first `data:` line; None for comments and keep-alives."""
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            return line[5:].strip()
    return None


class StreamFacts:
    """What every relayed stream records, whatever its API: text, usage, ids, first event."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.usage: Usage | None = None
        self.usage_problems: tuple[str, ...] = ()
        """What was wrong with the upstream's usage (see gateway.proxy.usage)."""
        self.model: str | None = None
        self.response_id: str | None = None
        self.done = False
        self.first_event_at: float | None = None


class StreamState(StreamFacts):
    """What a chat stream said so far: content, tool calls, finish reason, usage."""

    def __init__(self, client_wants_usage: bool, *, legacy: bool = False) -> None:
        super().__init__()
        self.client_wants_usage = client_wants_usage
        self.legacy = legacy
        """A legacy /v1/completions stream: logged as one text_completion."""
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None

    def feed(self, event: bytes) -> bytes | None:
        """The bytes to forward for one event (None: drop it)."""
        data = event_data(event)
        if data is None:
            return event  # comments and keep-alives pass through
        if data == b"[DONE]":
            self.done = True
            return event
        try:
            chunk = _decode_chunk(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise MalformedStream(
                f"the upstream sent an event that is not a chunk: {exc}"
            ) from None
        if self.first_event_at is None:
            self.first_event_at = time.perf_counter()
        self.model = self.model or chunk.model
        self.response_id = self.response_id or chunk.id
        for choice in chunk.choices:
            if choice.text:
                self.parts.append(choice.text)
            delta = choice.delta
            if delta is not None:
                if delta.content:
                    self.parts.append(delta.content)
                if delta.tool_calls:
                    self._merge_tool_calls(delta.tool_calls)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        if chunk.usage is not None:
            checked = chunk.usage.check()
            self.usage, self.usage_problems = checked.usage, checked.problems
            if not chunk.choices and not self.client_wants_usage:
                return None
        return event

    def _merge_tool_calls(self, deltas: list[_ToolCallDelta]) -> None:
        for delta in deltas:
            call = self.tool_calls.setdefault(
                delta.index,
                {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
            )
            if delta.id:
                call["id"] = delta.id
            if delta.function:
                for key in ("name", "arguments"):
                    piece = delta.function.get(key)
                    if isinstance(piece, str):
                        call["function"][key] += piece

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def tool_call_text(self) -> str:
        return "".join(
            call["function"]["name"] + call["function"]["arguments"]
            for call in self.tool_calls.values()
        )

    @property
    def output_text(self) -> str:
        """What the stream produced, as its output tokens are counted."""
        return self.text + self.tool_call_text()

    def as_logged(self) -> dict[str, Any]:
        """The stream folded into the one answer the request log keeps."""
        if not self.legacy:
            return self.as_completion()
        choice = {"index": 0, "text": self.text, "finish_reason": self.finish_reason}
        body: dict[str, Any] = {"id": self.response_id, "object": "text_completion",
                                "model": self.model, "choices": [choice]}  # fmt: skip
        if self.usage is not None:
            body["usage"] = self.as_completion()["usage"]
        return body

    def as_completion(self) -> dict[str, Any]:
        """The stream folded into one chat.completion, for the request log."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        body: dict[str, Any] = {
            "id": self.response_id,
            "object": "chat.completion",
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
        }
        if self.usage is not None:
            body["usage"] = {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
                "total_tokens": self.usage.total_tokens,
            }
        return body
