"""`{{variable}}` templates: parsed once per version, rendered by joining strings.

A template is split into literal text and placeholder names when a version is loaded, so
rendering is one pass over a short list with no regex and no evaluation of anything: values are
inserted as they are (strings) or as JSON (anything else), and a value that itself contains
`{{x}}` stays literal because rendered output is never parsed again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = [
    "PLACEHOLDER",
    "VARIABLE_NAME",
    "CompiledMessages",
    "Template",
    "compile_messages",
    "placeholders_in",
]

VARIABLE_NAME = r"[A-Za-z_][A-Za-z0-9_-]{0,63}"
# Spaces inside the braces are allowed: `{{name}}`, `{{ name }}`.
PLACEHOLDER = re.compile(r"\{\{\s*(" + VARIABLE_NAME + r")\s*\}\}")


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


@dataclass(frozen=True, slots=True)
class Template:
    """Literal parts interleaved with variable names: parts[0] name[0] parts[1] name[1] ..."""

    parts: tuple[str, ...]
    names: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[str] = []
        names: list[str] = []
        position = 0
        for match in PLACEHOLDER.finditer(text):
            parts.append(text[position : match.start()])
            names.append(match.group(1))
            position = match.end()
        parts.append(text[position:])
        return cls(tuple(parts), tuple(names))

    @property
    def is_literal(self) -> bool:
        return not self.names

    def render(self, values: Mapping[str, Any]) -> str:
        if not self.names:
            return self.parts[0]
        out = [self.parts[0]]
        for name, literal in zip(self.names, self.parts[1:], strict=True):
            out.append(_as_text(values[name]))
            out.append(literal)
        return "".join(out)


def _text_fields(message: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """The strings of a message that may hold placeholders: its content, or its text parts."""
    content = message.get("content")
    if isinstance(content, str):
        yield ("content",), content
    elif isinstance(content, list):
        for index, part in enumerate(content):
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield ("content", index, "text"), part["text"]


def placeholders_in(messages: list[dict[str, Any]]) -> dict[str, str]:
    """Every placeholder name, mapped to where it first appears (e.g. `messages[0].content`)."""
    found: dict[str, str] = {}
    for index, message in enumerate(messages):
        for path, text in _text_fields(message):
            where = f"messages[{index}]" + "".join(
                f"[{step}]" if isinstance(step, int) else f".{step}" for step in path
            )
            for name in Template.parse(text).names:
                found.setdefault(name, where)
    return found


@dataclass(frozen=True, slots=True)
class _CompiledMessage:
    message: dict[str, Any]
    content: Template | None
    """Set when the content is a string with placeholders."""
    parts: tuple[tuple[int, Template], ...]
    """Set when the content is a list of parts: (index, template) of text parts to render."""

    def render(self, values: Mapping[str, Any]) -> dict[str, Any]:
        if self.content is not None:
            return {**self.message, "content": self.content.render(values)}
        if self.parts:
            content = list(self.message["content"])
            for index, template in self.parts:
                content[index] = {**content[index], "text": template.render(values)}
            return {**self.message, "content": content}
        # A fresh dict per call: the request path may add to messages it was handed.
        return dict(self.message)


@dataclass(frozen=True, slots=True)
class CompiledMessages:
    messages: tuple[_CompiledMessage, ...]

    def render(self, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Render with `values`, which must hold every placeholder name (checked by callers)."""
        return [message.render(values) for message in self.messages]


def compile_messages(messages: list[dict[str, Any]]) -> CompiledMessages:
    compiled = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            template = Template.parse(content)
            compiled.append(
                _CompiledMessage(message, None if template.is_literal else template, ())
            )
        elif isinstance(content, list):
            parts = tuple(
                (index, template)
                for index, part in enumerate(content)
                if isinstance(part, dict)
                and isinstance(part.get("text"), str)
                and not (template := Template.parse(part["text"])).is_literal
            )
            compiled.append(_CompiledMessage(message, None, parts))
        else:
            compiled.append(_CompiledMessage(message, None, ()))
    return CompiledMessages(tuple(compiled))
