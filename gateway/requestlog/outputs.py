"""The text an answer holds, whichever endpoint gave it: what evaluators score and the log
shows as the output."""

from __future__ import annotations

from typing import Any

__all__ = ["output_text_of", "responses_output_text"]


def responses_output_text(body: Any) -> str | None:
    """The text of a Responses API answer: its output_text parts, joined; None if not one."""
    output = body.get("output") if isinstance(body, dict) else None
    if not isinstance(output, list):
        return None
    texts = []
    for item in output:
        if isinstance(item, dict) and item.get("type") == "message":
            for part in item.get("content") or ():
                if isinstance(part, dict) and part.get("type") == "output_text":
                    text = part.get("text")
                    texts.append(text if isinstance(text, str) else "")
    return "".join(texts)


def output_text_of(body: Any) -> str | None:
    """The assistant's text in a logged chat completion, text completion or response; None
    when the body is none of them."""
    if isinstance(body, dict) and body.get("object") == "response":
        return responses_output_text(body)
    try:
        choice = body["choices"][0]
        if body.get("object") == "text_completion":
            text = choice.get("text")
            return text if isinstance(text, str) else None
        content = choice["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return content if isinstance(content, str) else ("" if content is None else None)
