"""Writing prompt bundles as files people review: YAML with block text, or TOML.

Multi-line message text is written as YAML literal blocks (`|`) or TOML multi-line strings,
so a changed sentence shows as a changed line in a diff. Reading a written file back gives
the same content hashes, so a pull followed by a push changes nothing.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

__all__ = ["HEADER", "dump_toml", "dump_yaml"]

HEADER = (
    "Written by `sluice prompts pull`; apply with `sluice prompts push DIR`. Versions are\n"
    "matched by content: an added or edited version becomes a new version on push, and\n"
    "nothing on the server is ever overwritten. Labels move to the versions that list them."
)


class _BlockDumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_BlockDumper.add_representer(str, _represent_str)


def dump_yaml(bundle: dict[str, Any]) -> str:
    body = yaml.dump(
        bundle,
        Dumper=_BlockDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )
    comment = "".join(f"# {line}\n" for line in HEADER.splitlines())
    return comment + body


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else _string(name)


def _escape(char: str, multiline: bool) -> str:
    if char == "\\":
        return "\\\\"
    if char == '"':
        # Escaped in multi-line strings too, so no run of quotes can close one early.
        return '\\"'
    if char == "\n" and multiline:
        return char
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return f"\\u{ord(char):04x}"
    return char


_SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _string(text: str) -> str:
    multiline = "\n" in text
    inner = "".join(_escape(char, multiline) for char in text)
    # In a multi-line string the newline right after the opening quotes is dropped by readers:
    # it only puts the text's first line at the start of a line.
    return '"""\n' + inner + '"""' if multiline else f'"{inner}"'


def _value(value: Any) -> str:
    if value is None:
        raise ValueError("TOML has no null")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise ValueError(f"cannot write {type(value).__name__} as TOML")


def _table(lines: list[str], values: dict[str, Any]) -> None:
    for name, value in values.items():
        lines.append(f"{_key(name)} = {_value(value)}")


def dump_toml(bundle: dict[str, Any]) -> str:
    """A bundle as TOML; ValueError (naming the field) for values TOML cannot hold (null)."""
    lines = [f"# {line}" for line in HEADER.splitlines()]
    top = {k: v for k, v in bundle.items() if k != "versions"}
    where = "the prompt"
    try:
        _table(lines, top)
        for index, version in enumerate(bundle.get("versions", []), start=1):
            where = f"version {version.get('version', index)}"
            lines.append("")
            lines.append("[[versions]]")
            _table(lines, {k: v for k, v in version.items() if k != "messages"})
            for message in version.get("messages", []):
                lines.append("")
                lines.append("[[versions.messages]]")
                _table(lines, message)
    except ValueError as exc:
        raise ValueError(f"prompt '{bundle.get('slug')}', {where}: {exc}") from None
    return "\n".join(lines) + "\n"
