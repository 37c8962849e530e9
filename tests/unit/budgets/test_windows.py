"""Budget windows at UTC boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from gateway.budgets.windows import Period, window_for


def test_daily_window_turns_at_midnight_utc() -> None:
    before = window_for(Period.DAILY, datetime(2026, 11, 21, 23, 59, 59, 999999, tzinfo=UTC))
    after = window_for(Period.DAILY, datetime(2026, 11, 22, 0, 0, tzinfo=UTC))
    assert before.key == "2026-11-21"
    assert after.key == "2026-11-22"
    assert before.end == after.start == datetime(2026, 11, 22, tzinfo=UTC)


def test_monthly_window_turns_on_the_first_and_across_years() -> None:
    december = window_for(Period.MONTHLY, datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    january = window_for(Period.MONTHLY, datetime(2027, 1, 1, tzinfo=UTC))
    assert (december.key, january.key) == ("2026-12", "2027-01")
    assert december.start == datetime(2026, 12, 1, tzinfo=UTC)
    assert december.end == january.start == datetime(2027, 1, 1, tzinfo=UTC)


def test_moments_in_other_time_zones_are_placed_in_utc() -> None:
    plus_five = timezone(timedelta(hours=5))
    window = window_for(Period.DAILY, datetime(2026, 11, 22, 3, 0, tzinfo=plus_five))
    assert window.key == "2026-11-21"


def test_total_never_turns_nor_expires() -> None:
    window = window_for(Period.TOTAL, datetime(2030, 1, 1, tzinfo=UTC))
    assert (window.key, window.start, window.end, window.expire_at) == ("total", None, None, 0)
    assert window.contains(datetime(1999, 1, 1, tzinfo=UTC))


def test_counters_are_forgotten_a_week_after_their_window() -> None:
    window = window_for(Period.DAILY, datetime(2026, 11, 21, 12, tzinfo=UTC))
    assert window.expire_at == int(datetime(2026, 11, 29, tzinfo=UTC).timestamp())
