"""Bounds on what callers send, checked in one place before anything reaches a database.

- JSON nesting deeper than `MAX_JSON_DEPTH` is refused: msgspec would otherwise hit Python's
  recursion limit (a 500), and nothing the gateway stores is nested that deep.
- Admin integers must fit `INTEGER` (32 bits, signed), the type of every integer column: a
  bigger one overflows SQLite's and Postgres's binding, far from the field that caused it.
- Stored admin text may not hold NUL or other control characters, except tab, newline and
  carriage return, which prompt text legitimately has: Postgres refuses NUL in text outright.
  Identifiers (query and path parameters, client identifier fields) refuse those three too.

Every refusal is an `InvalidRequest` (400 invalid_request) naming the field.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from gateway.errors import InvalidRequest

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "MAX_JSON_DEPTH",
    "check_admin_value",
    "check_depth",
    "check_identifier",
    "check_int",
    "decode_json",
]

MAX_JSON_DEPTH = 64
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1

_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_NAMES = {"\x00": "NUL", "\t": "a tab", "\n": "a newline", "\r": "a carriage return"}


def _too_deep(what: str) -> InvalidRequest:
    return InvalidRequest(
        f"{what} is nested more than {MAX_JSON_DEPTH} levels deep: flatten it.", param=None
    )


def decode_json(raw: bytes | str, *, what: str = "The request body") -> Any:
    """Decode untrusted JSON: a 400 for bad syntax or nesting deeper than MAX_JSON_DEPTH."""
    try:
        value = msgspec.json.decode(raw)
    except RecursionError:
        raise _too_deep(what) from None
    except msgspec.DecodeError as exc:
        if "out of range" in str(exc):  # msgspec says so of a float past 1e308
            raise InvalidRequest(
                f"{what} holds a number too large to use ({exc}): send a smaller one."
            ) from None
        raise InvalidRequest(f"{what} is not valid JSON: {exc}.") from None
    # A document with fewer brackets than the bound cannot be deeper than it: the common case
    # costs two C-speed counts, not a walk.
    opening = (b"[", b"{") if isinstance(raw, bytes) else ("[", "{")
    if raw.count(opening[0]) + raw.count(opening[1]) > MAX_JSON_DEPTH:  # type: ignore[arg-type]
        check_depth(value, what=what)
    return value


def check_depth(value: Any, *, what: str = "The request body") -> None:
    """Refuse a decoded value nested deeper than MAX_JSON_DEPTH."""
    if type(value) in (dict, list) and not _within(value, MAX_JSON_DEPTH):
        raise _too_deep(what)


def _within(value: dict[str, Any] | list[Any], budget: int) -> bool:
    # Recursion is safe here (it stops at MAX_JSON_DEPTH) and five times faster than an
    # explicit stack: this runs on the proxy's request path for long conversations.
    if budget == 0:
        return False
    for child in value.values() if type(value) is dict else value:
        if (type(child) is dict or type(child) is list) and not _within(child, budget - 1):
            return False
    return True


def _describe(char: str) -> str:
    return _CONTROL_NAMES.get(char, f"the control character U+{ord(char):04X}")


def check_identifier(name: str, value: str) -> str:
    """An identifier (a filter, a user, a tag value) holds no control character at all."""
    found = _ANY_CONTROL.search(value)
    if found:
        raise InvalidRequest(f"{name} contains {_describe(found.group())}: remove it.", param=name)
    return value


def check_int(name: str, value: int) -> int:
    if not INT_MIN <= value <= INT_MAX:
        raise InvalidRequest(
            f"{name} is out of range: it must be between {INT_MIN} and {INT_MAX}.", param=name
        )
    return value


def _child(path: str, step: str | int) -> str:
    if isinstance(step, int):
        return f"{path}[{step}]"
    return f"{path}.{step}" if path else step


def check_admin_value(value: Any) -> None:
    """Walk a decoded admin body: depth, 32-bit integers and control characters in text."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            found = _TEXT_CONTROL.search(item)
            if found:
                raise InvalidRequest(
                    f"{path or 'The body'} contains {_describe(found.group())}: remove it.",
                    param=path or None,
                )
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            check_int(path or "The body", item)
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise _too_deep("The request body")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                where = _child(path, key)
                if isinstance(key, str) and _TEXT_CONTROL.search(key):
                    check_identifier(f"a field name in {path or 'the body'}", key)
                stack.append((child, where, depth + 1))
