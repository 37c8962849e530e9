"""Make a request-log row storable before it reaches the database, the same on every dialect.

A row takes strings from clients and upstreams (model names, user, session, tags, bodies).
Postgres refuses a NUL in text and `\\u0000` in JSONB, both refuse lone surrogates, and Postgres
refuses a string longer than its column where SQLite would keep it: one such value used to fail
its whole batch. Here NULs and lone surrogates become U+FFFD and an over-long string is cut to
its column with a visible marker, so a row reads the same whichever database stores it.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from sqlalchemy import JSON, String

from gateway.db.models import RequestLog

__all__ = ["CUT_MARKER", "REPLACEMENT", "storable_json", "storable_row", "storable_text"]

REPLACEMENT = "\ufffd"
CUT_MARKER = "…[cut]"

_encode = msgspec.json.Encoder().encode
# The bytes a NUL becomes in msgspec's JSON: searching the encoded document is much cheaper
# than walking it, and almost every document is clean.
_ESCAPED_NUL = b"\\u0000"

_SURROGATE = re.compile("[\ud800-\udfff]")

_TEXT_LIMITS: dict[str, int | None] = {
    column.key: column.type.length
    for column in RequestLog.__table__.columns
    if isinstance(column.type, String) and not isinstance(column.type, JSON)
}
_TEXT_COLUMNS = tuple(_TEXT_LIMITS.items())
_JSON_COLUMNS = tuple(
    column.key for column in RequestLog.__table__.columns if isinstance(column.type, JSON)
)


def storable_text(value: str, limit: int | None = None) -> str:
    """`value` without NULs or lone surrogates, cut to `limit` characters with a marker."""
    if "\x00" in value:
        value = value.replace("\x00", REPLACEMENT)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = _SURROGATE.sub(REPLACEMENT, value)
    if limit is not None and len(value) > limit:
        value = value[: limit - len(CUT_MARKER)] + CUT_MARKER
    return value


def storable_json(document: Any) -> Any:
    """The JSON document with every string (keys too) made storable; itself when already so."""
    try:
        encoded = _encode(document)
        # A backslash is a memchr away; the escape's own search only runs when there is one.
        if encoded.find(b"\\") < 0 or _ESCAPED_NUL not in encoded:
            return document
    except UnicodeEncodeError:
        pass  # a lone surrogate somewhere: clean the whole tree
    except (msgspec.EncodeError, TypeError):
        return document  # not JSON at all: the writer fails it and the row is dead-lettered
    return _clean(document)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {
            (storable_text(k) if isinstance(k, str) else k): _clean(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def storable_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row, with each text value fitted to its column and each JSON document cleaned."""
    for name, limit in _TEXT_COLUMNS:
        value = row.get(name)
        if value is None or not isinstance(value, str):
            continue
        # The common case, decided without copying: short ASCII without a NUL.
        if value.isascii() and (limit is None or len(value) <= limit) and "\x00" not in value:
            continue
        row[name] = storable_text(value, limit)
    for name in _JSON_COLUMNS:
        value = row.get(name)
        if value is not None:
            row[name] = storable_json(value)
    return row
