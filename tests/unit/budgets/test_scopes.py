"""Which budgets apply to a call."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from gateway.budgets.scopes import BudgetIndex, BudgetRecord, Scope, parse_tag
from gateway.budgets.windows import Period
from gateway.keys.service import KeyInfo
from gateway.proxy.context import CallContext

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def _budget(
    budget_id: str, scope: Scope, value: str | None, pct: float | None = None
) -> BudgetRecord:
    return BudgetRecord(budget_id, scope, value, Period.DAILY, Decimal("10"), pct, NOW, NOW)


def _call(**fields: object) -> CallContext:
    call = CallContext(request_id="r", started=0.0, created_at=NOW)
    for name, value in fields.items():
        setattr(call, name, value)
    return call


def test_each_scope_matches_its_own_calls() -> None:
    index = BudgetIndex.build(
        [
            _budget("1", Scope.GLOBAL, None),
            _budget("2", Scope.KEY, "k1"),
            _budget("3", Scope.PROMPT, "greet"),
            _budget("4", Scope.USER, "alice"),
            _budget("5", Scope.TAG, "feature=search"),
            _budget("6", Scope.TAG, "team=ml"),
        ]
    )
    assert [b.id for b in index.matching(_call())] == ["1"]
    call = _call(
        key=KeyInfo("k1", "n", "p", NOW),
        user="alice",
        tags={"feature": "search", "team": "web"},
    )
    call.prompt.slug = "greet"
    assert [b.id for b in index.matching(call)] == ["1", "2", "3", "4", "5"]
    assert [b.id for b in index.matching(_call(user="bob", tags={"team": "ml"}))] == ["1", "6"]


def test_soft_limit_and_label() -> None:
    budget = _budget("1", Scope.TAG, "feature=search", pct=80)
    assert budget.limit_ticks == 10 * 10**10
    assert budget.soft_ticks == 8 * 10**10
    assert budget.label == "'tag feature=search, daily'"
    assert _budget("2", Scope.GLOBAL, None).label == "'global, daily'"


def test_tags_are_name_equals_value_with_lower_cased_names() -> None:
    assert parse_tag("Feature=Search") == ("feature", "Search")
    assert parse_tag("a=b=c") == ("a", "b=c")
    for bad in ("feature", "=x", "feature=", "bad name=x"):
        assert parse_tag(bad) is None
