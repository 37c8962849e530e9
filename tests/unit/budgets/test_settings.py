"""The budgets' settings, read from the environment like every other section."""

from __future__ import annotations

import pytest

from gateway.settings import BudgetSettings, SettingsError, load_settings


def test_defaults_fail_closed_and_refuse_unpriced_models() -> None:
    assert load_settings({}).budgets == BudgetSettings(
        fail_open=False,
        default_max_tokens=4096,
        unpriced_models="refuse",
        reservation_ttl=900.0,
        store_timeout=2.0,
    )


def test_every_budget_setting_is_read() -> None:
    budgets = load_settings(
        {
            "SLUICE_BUDGET_FAIL_OPEN": "true",
            "SLUICE_DEFAULT_MAX_TOKENS": "512",
            "SLUICE_UNPRICED_MODELS": "Fallback",
            "SLUICE_BUDGET_RESERVATION_TTL": "1200",
            "SLUICE_BUDGET_STORE_TIMEOUT": "0.5",
        }
    ).budgets
    assert budgets == BudgetSettings(True, 512, "fallback", 1200.0, 0.5)


def test_bad_budget_settings_are_all_reported() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "SLUICE_BUDGET_FAIL_OPEN": "maybe",
                "SLUICE_DEFAULT_MAX_TOKENS": "0",
                "SLUICE_UNPRICED_MODELS": "free",
            }
        )
    problems = "\n".join(caught.value.problems)
    assert "SLUICE_BUDGET_FAIL_OPEN='maybe': must be true or false" in problems
    assert "SLUICE_DEFAULT_MAX_TOKENS='0'" in problems
    assert "SLUICE_UNPRICED_MODELS='free': must be 'refuse' or 'fallback'" in problems
