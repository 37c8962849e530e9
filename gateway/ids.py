"""Identifiers the gateway makes: time-ordered ids and key secrets."""

from __future__ import annotations

import os
import secrets
import time

__all__ = ["new_id", "new_key_secret"]

KEY_PREFIX = "sk-sluice-"


def new_id() -> str:
    """32 hex chars: 48 bits of milliseconds then 80 random bits, so ids sort by creation time."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def new_key_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)
