"""Cursor paging shared by every admin list: `?limit=&cursor=` in, `{data, next_cursor}` out."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import msgspec

from gateway.errors import InvalidRequest

__all__ = ["Page", "decode_cursor", "encode_cursor", "page_limit"]

T = TypeVar("T")
MAX_LIMIT = 500


class Page(msgspec.Struct, Generic[T]):
    data: list[T]
    next_cursor: str | None


def page_limit(limit: int | None, default: int = 50) -> int:
    if limit is None:
        return default
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}.", param="limit")
    return limit


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequest("cursor is not one this API returned.", param="cursor") from None


def make_page(items: Sequence[Any], limit: int, key: str = "id") -> Page[Any]:
    """`items` holds up to limit+1 rows: the extra one tells there is a next page."""
    data = list(items[:limit])
    more = len(items) > limit
    last = data[-1] if data else None
    cursor = None
    if more and last is not None:
        value = last[key] if isinstance(last, dict) else getattr(last, key)
        cursor = encode_cursor(str(value))
    return Page(data=data, next_cursor=cursor)
