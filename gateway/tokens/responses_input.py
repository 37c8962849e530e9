"""Count a Responses API request's input the way a chat request is counted.

The Responses API bills `instructions` and `input` as the chat messages they become upstream:
instructions as a system message, each input message as a message, a function call as the
assistant's call, a function call's output as a tool message. Function tools are flat
(`{"type": "function", "name", "parameters"}`) where chat nests them under `function`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.tokens.counting import count_chat_prompt

__all__ = ["count_responses_input", "responses_as_chat"]

_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})


def _content(content: Any) -> Any:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content or ():
        kind = part.get("type")
        if kind in _TEXT_PARTS:
            parts.append({"type": "text", "text": part.get("text") or ""})
        elif kind == "refusal":
            parts.append({"type": "refusal", "refusal": part.get("refusal") or ""})
        elif kind == "input_image":
            parts.append({"type": "image_url", "image_url": {"detail": part.get("detail")}})
        # input_file and input_audio are sized by the upstream only, as in chat.
    return parts


def _message(item: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = item.get("type", "message")
    if kind == "message":
        return {"role": item.get("role") or "user", "content": _content(item.get("content"))}
    if kind == "function_call":
        call = {"name": item.get("name") or "", "arguments": item.get("arguments") or ""}
        return {"role": "assistant", "tool_calls": [{"type": "function", "function": call}]}
    if kind == "function_call_output":
        output = item.get("output")
        return {"role": "tool", "content": _content(output) if output else ""}
    return None  # item references, reasoning items: upstream state, not text we hold


def responses_as_chat(
    instructions: Any, input: Any, tools: Sequence[Mapping[str, Any]] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chat messages and tools a Responses request amounts to, for counting."""
    messages: list[dict[str, Any]] = []
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    if isinstance(input, str):
        messages.append({"role": "user", "content": input})
    else:
        for item in input or ():
            message = _message(item)
            if message is not None:
                messages.append(message)
    functions = [
        {"type": "function", "function": tool}
        for tool in tools or ()
        if tool.get("type") == "function"
    ]
    return messages, functions


def count_responses_input(
    model: str, instructions: Any, input: Any, tools: Sequence[Mapping[str, Any]] | None
) -> int:
    """Input tokens of a Responses request; TypeError/ValueError/AttributeError if malformed."""
    messages, functions = responses_as_chat(instructions, input, tools)
    return count_chat_prompt(model, messages, functions)
