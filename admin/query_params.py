"""Parsing the query parameters the admin lists share: times and flags, with 400s naming them."""

from __future__ import annotations

from datetime import datetime

from gateway.errors import InvalidRequest
from gateway.input_bounds import check_int

__all__ = ["parse_bool", "parse_datetime", "parse_whole_number"]


def parse_whole_number(name: str, value: str) -> int:
    """A whole-number filter, bounded like the INTEGER column it is compared with."""
    if not value.isascii() or not value.isdigit():
        raise InvalidRequest(f"{name} must be a whole number.", param=name)
    return check_int(name, int(value))


def parse_datetime(name: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"{name} must be an ISO 8601 date-time, e.g. 2026-11-21T00:00:00Z.", param=name
        ) from None
    if parsed.tzinfo is None:
        raise InvalidRequest(f"{name} must carry a time zone (e.g. a trailing Z).", param=name)
    return parsed


def parse_bool(name: str, value: str) -> bool:
    if value.lower() in {"true", "1"}:
        return True
    if value.lower() in {"false", "0"}:
        return False
    raise InvalidRequest(f"{name} must be true or false.", param=name)
