"""The budgets and pricing admin API: bad input gets a clear 400, and replicas stay in step."""

from __future__ import annotations

import time
from typing import Any

from gateway.budgets.plugin import BudgetsPlugin
from tests.conftest import GatewayFactory, RunningGateway
from tests.e2e.budgets_support import create_budget, new_key
from tests.e2e.prompts_support import make_prompt


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["message"]
    return error


BAD_BUDGETS: list[tuple[dict[str, Any], str | None, str]] = [
    ({"scope": "global", "period": "daily", "limit_usd": 0}, "limit_usd", "more than 0"),
    ({"scope": "global", "period": "daily", "limit_usd": -5}, "limit_usd", "more than 0"),
    ({"scope": "global", "period": "daily", "limit_usd": "lots"}, "limit_usd", "decimal"),
    ({"scope": "global", "period": "daily", "limit_usd": 1e12}, "limit_usd", "at most"),
    ({"scope": "global", "period": "daily", "limit_usd": 1e-11}, "limit_usd", "decimal places"),
    ({"scope": "planet", "period": "daily", "limit_usd": 1}, "scope", "planet"),
    ({"scope": "global", "period": "weekly", "limit_usd": 1}, "period", "weekly"),
    ({"scope": "global", "period": "daily"}, None, "limit_usd"),
    ({"scope": "global", "period": "daily", "limit_usd": 1, "owner": "me"}, None, "owner"),
    ({"scope": "global", "scope_value": "x", "period": "daily", "limit_usd": 1},
     "scope_value", "no scope_value"),
    ({"scope": "user", "period": "daily", "limit_usd": 1}, "scope_value", "needs"),
    ({"scope": "tag", "scope_value": "feature", "period": "daily", "limit_usd": 1},
     "scope_value", "name=value"),
    ({"scope": "tag", "scope_value": "bad name=x", "period": "daily", "limit_usd": 1},
     "scope_value", "name=value"),
    ({"scope": "key", "scope_value": "nokey", "period": "daily", "limit_usd": 1},
     "scope_value", "No key"),
    ({"scope": "prompt", "scope_value": "noprompt", "period": "daily", "limit_usd": 1},
     "scope_value", "No prompt"),
    ({"scope": "global", "period": "daily", "limit_usd": 1, "soft_limit_pct": 0},
     "soft_limit_pct", ""),
    ({"scope": "global", "period": "daily", "limit_usd": 1, "soft_limit_pct": 120},
     "soft_limit_pct", ""),
]  # fmt: skip


def test_bad_budgets_are_a_400_naming_the_field(sqlite_gateway: RunningGateway) -> None:
    for spec, param, says in BAD_BUDGETS:
        error = _error(sqlite_gateway.admin.post("/admin/budgets", json=spec), 400)
        if param is not None:
            assert error["param"] == param, (spec, error)
        assert says in error["message"], (spec, error)
    assert sqlite_gateway.admin.get("/admin/budgets").json()["data"] == []


def test_budgets_on_things_that_exist_and_their_lifecycle(gateway: RunningGateway) -> None:
    key_id, _ = new_key(gateway)
    make_prompt(gateway, "greeter", {"messages": [{"role": "system", "content": "Hi."}]})
    on_key = create_budget(
        gateway.admin, scope="key", scope_value=key_id, period="monthly", limit_usd=3
    )
    on_prompt = create_budget(
        gateway.admin,
        scope="prompt",
        scope_value="greeter",
        period="total",
        limit_usd="0.5",
        soft_limit_pct=80,
    )
    on_tag = create_budget(
        gateway.admin, scope="tag", scope_value="Feature=Search", period="daily", limit_usd=1
    )
    assert on_tag["scope_value"] == "feature=Search"  # tag names are lower-cased, as headers are
    assert on_prompt["soft_limit_usd"] == 0.4
    assert on_prompt["resets_at"] is None
    assert on_key["window"] == time.strftime("%Y-%m", time.gmtime())
    duplicate = gateway.admin.post(
        "/admin/budgets",
        json={"scope": "key", "scope_value": key_id, "period": "monthly", "limit_usd": 9},
    )
    assert _error(duplicate, 409)["code"] == "conflict"

    listed = gateway.admin.get("/admin/budgets", params={"limit": 2}).json()
    assert [b["id"] for b in listed["data"]] == [on_tag["id"], on_prompt["id"]]
    rest = gateway.admin.get("/admin/budgets", params={"cursor": listed["next_cursor"]}).json()
    assert [b["id"] for b in rest["data"]] == [on_key["id"]]
    only_keys = gateway.admin.get("/admin/budgets", params={"scope": "key"}).json()["data"]
    assert [b["id"] for b in only_keys] == [on_key["id"]]

    path = f"/admin/budgets/{on_prompt['id']}"
    patched = gateway.admin.patch(path, json={"soft_limit_pct": None, "limit_usd": 2})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["soft_limit_pct"], patched.json()["limit_usd"]) == (None, 2)
    assert _error(gateway.admin.patch(path, json={"scope": "user"}), 400)
    assert _error(gateway.admin.patch(path, json={"limit_usd": -1}), 400)["param"] == "limit_usd"
    assert gateway.admin.delete(path).status_code == 204
    assert _error(gateway.admin.get(path), 404)["code"] == "not_found"
    assert _error(gateway.admin.delete(path), 404)
    assert _error(gateway.admin.get(f"{path}/alerts"), 404)


def test_the_budgets_api_needs_the_admin_token(sqlite_gateway: RunningGateway) -> None:
    for method, path in [("GET", "/admin/budgets"), ("GET", "/admin/pricing")]:
        response = sqlite_gateway.http.request(method, path)
        assert _error(response, 401)["code"] == "invalid_admin_token"


BAD_PRICES: list[tuple[dict[str, Any], str]] = [
    ({"models": {"m": {"input": -1, "output": 1}}}, "models.m.input must be a number"),
    ({"models": {"m": {"input": 1, "output": 1, "cached_input": -0.1}}}, "cached_input"),
    ({"models": {"m": {"input": 1}}}, "output"),
    ({"models": {"m": {"input": 1, "output": 1, "colour": "red"}}}, "colour"),
    ({"models": {"m": {"input": 1, "output": 1, "max_output_tokens": 0}}}, ">= 1"),
    ({"models": {" m": {"input": 1, "output": 1}}}, "without surrounding spaces"),
    ({"models": {}}, "length"),
    ({"prices": {}}, "prices"),
]


def test_bad_prices_are_a_400(sqlite_gateway: RunningGateway) -> None:
    for body, says in BAD_PRICES:
        error = _error(sqlite_gateway.admin.put("/admin/pricing", json=body), 400)
        assert says in error["message"], (body, error)
    assert "m" not in sqlite_gateway.admin.get("/admin/pricing").json()["models"]


def test_budget_changes_reach_every_replica(
    start_gateway: GatewayFactory, database_url: str, redis_url: str
) -> None:
    first = start_gateway(database_url, SLUICE_REDIS_URL=redis_url)
    second = start_gateway(database_url, SLUICE_REDIS_URL=redis_url)
    registry = second.plugin(BudgetsPlugin).service.value.registry

    def seen_by_second(predicate: Any) -> None:
        deadline = time.monotonic() + 5
        while not predicate(registry.index):
            assert time.monotonic() < deadline, "the second replica never saw the change"
            time.sleep(0.01)

    budget = create_budget(
        first.admin, scope="user", scope_value="rep", period="daily", limit_usd=1
    )
    seen_by_second(lambda index: index.count == 1)
    first.admin.patch(f"/admin/budgets/{budget['id']}", json={"limit_usd": 7})
    seen_by_second(lambda index: index.global_ == () and _limit(index) == 7)
    first.admin.delete(f"/admin/budgets/{budget['id']}")
    seen_by_second(lambda index: index.count == 0)
    prices = first.admin.put(
        "/admin/pricing", json={"models": {"rep-model": {"input": 1, "output": 1}}}
    )
    assert prices.status_code == 200
    pricing = second.plugin(BudgetsPlugin).service.value.pricing
    deadline = time.monotonic() + 5
    while pricing.price_for("rep-model") is None:
        assert time.monotonic() < deadline, "the second replica never saw the price"
        time.sleep(0.01)


def _limit(index: Any) -> float:
    [[budget]] = [items for values in index.by_scope.values() for items in values.values()]
    return float(budget.limit_usd)
