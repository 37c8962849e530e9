"""Cron expressions, in UTC: checked once when a schedule is written, then stepped forward."""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import croniter

from gateway.errors import InvalidRequest

__all__ = ["check_cron", "next_fire"]


def check_cron(expression: str) -> str:
    """The expression, normalised; a 400 naming `cron` when it is not five valid fields."""
    text = " ".join(expression.split())
    if len(text.split(" ")) != 5 or not croniter.is_valid(text):
        raise InvalidRequest(
            f"'{expression}' is not a cron expression: use five fields, minute hour day month "
            "weekday, in UTC (e.g. '0 3 * * *' for 03:00 every night).",
            param="cron",
        )
    return text


def next_fire(expression: str, after: datetime) -> datetime:
    """The first time strictly after `after` that `expression` matches (UTC)."""
    fire: datetime = croniter(expression, after.astimezone(UTC)).get_next(datetime)
    return fire.astimezone(UTC)
