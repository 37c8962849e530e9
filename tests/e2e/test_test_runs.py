"""Test runs end to end: a suite through the gateway's own request path, scored and totalled."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gateway.tokens.counting import count_chat_prompt, count_text
from tests.conftest import GatewayFactory, RunningGateway
from tests.e2e.evaluations_support import evaluations
from tests.e2e.testing_support import (
    add_case,
    error_of,
    get_run,
    results,
    start_run,
    suite_prompt,
    wait_for_run,
)

EXACT = {"evaluator_key": "exact_match"}
# gpt-4o-mini's shipped price, USD per million tokens
INPUT, OUTPUT = Decimal("0.15"), Decimal("0.60")


def _cost(reply: str, user: str) -> Decimal:
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": user},
    ]
    prompt = count_chat_prompt("gpt-4o-mini", messages)
    return (prompt * INPUT + count_text("gpt-4o-mini", reply) * OUTPUT) / 1_000_000


@pytest.fixture
def slow_gateway(start_gateway: GatewayFactory, database_url: str) -> RunningGateway:
    return start_gateway(database_url, SLUICE_TEST_RUN_HEARTBEAT="0.05")


def test_run_scores_every_case_and_totals_them(slow_gateway: RunningGateway) -> None:
    gateway = slow_gateway
    suite_prompt(gateway, "qa")
    contains = {"evaluator_key": "contains", "config": {"value": "Paris"}, "weight": 3}
    add_case(
        gateway,
        "qa",
        "exact",
        "#delay=150 #reply=Paris",
        expected_output="Paris",
        evaluators=[EXACT, contains],
        tags=["smoke"],
    )
    add_case(
        gateway,
        "qa",
        "wrong",
        "#delay=150 #reply=Lyon",
        expected_output="Paris",
        evaluators=[EXACT, contains],
    )
    add_case(
        gateway,
        "qa",
        "wordy",
        "#delay=150 #reply=Paris it is",
        expected_output="Paris",
        evaluators=[EXACT, contains],
    )

    run = start_run(gateway, prompt="qa", concurrency=1)
    assert run["status"] in ("pending", "running") and run["total"] == 3
    assert (run["version"], run["model"]) == (1, "gpt-4o-mini")
    assert run["estimated_cost_usd"] > 0

    seen = wait_for_run(gateway, run["id"], status=("running",))
    while seen["completed"] == 0:
        seen = get_run(gateway, run["id"])
    assert seen["status"] == "running" and 0 < seen["completed"] < 3  # progress in between

    done = wait_for_run(gateway, run["id"])
    assert done["status"] == "completed", done
    rows = {row["name"]: row for row in results(gateway, run["id"])}
    assert [rows[n]["status"] for n in ("exact", "wrong", "wordy")] == [
        "passed",
        "failed",
        "failed",
    ]
    assert rows["exact"]["score"] == 1.0 and rows["wrong"]["score"] == 0.0
    assert rows["wordy"]["score"] == pytest.approx(0.75)  # (0*1 + 1*3) / 4
    assert rows["wordy"]["output"] == "Paris it is"
    assert {e["evaluator_key"]: e["passed"] for e in rows["wordy"]["evaluations"]} == {
        "exact_match": False,
        "contains": True,
    }
    for name, reply in (("exact", "Paris"), ("wrong", "Lyon"), ("wordy", "Paris it is")):
        user = f"#delay=150 #reply={reply}"
        assert Decimal(str(rows[name]["cost_usd"])) == pytest.approx(_cost(reply, user))
        assert rows[name]["latency_ms"] >= 150 and rows[name]["attempts"] == 1
    assert (done["passed"], done["failed"], done["completed"]) == (1, 2, 3)
    assert done["pass_rate"] == pytest.approx(1 / 3)
    assert done["mean_score"] == pytest.approx((1 + 0 + 0.75) / 3)
    total = sum(Decimal(str(r["cost_usd"])) for r in rows.values())
    assert Decimal(str(done["cost_usd"])) == pytest.approx(total)
    assert done["gate"] is False and done["duration_s"] > 0

    # Test traffic is logged as such and scored in the test_run context only.
    logged = gateway.wait_for_rows(3, is_test_run="true", prompt="qa")
    assert {row["request_id"] for row in logged} == {r["request_id"] for r in rows.values()}
    scored = evaluations(gateway, context="test_run")
    assert len(scored) == 6 and {e["test_run_id"] for e in scored} == {run["id"]}
    assert evaluations(gateway, context="production") == []


def test_subset_by_tag_and_bad_runs(
    start_gateway: GatewayFactory, database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "sluice.toml"
    config.write_text('[[routes]]\nmodels = ["gpt-*"]\n')  # nothing else is served
    gateway = start_gateway(database_url, SLUICE_CONFIG=str(config))
    suite_prompt(gateway, "qa")
    assert (
        error_of(gateway.admin.post("/admin/test-runs", json={"prompt": "qa"}), 400)["param"]
        == "prompt"
    )  # no cases yet
    first = add_case(gateway, "qa", "one", "#reply=a", tags=["smoke"])
    add_case(gateway, "qa", "two", "#reply=b", variables={})
    run = start_run(gateway, prompt="qa", tests={"tags": ["smoke"]})
    assert run["total"] == 1
    by_id = start_run(gateway, prompt="qa", tests={"ids": [first["id"]]})
    assert wait_for_run(gateway, by_id["id"])["passed"] == 1

    bad = {
        "no match": ({"prompt": "qa", "tests": {"tags": ["nope"]}}, 400),
        "unknown id": ({"prompt": "qa", "tests": {"ids": ["x"]}}, 400),
        "no route": ({"prompt": "qa", "model_override": "no-such-model"}, 404),
        "no prompt": ({"prompt": "nope"}, 404),
        "no version": ({"prompt": "qa", "version": 9}, 404),
        "no label": ({"prompt": "qa", "label": "staging"}, 404),
        "both": ({"prompt": "qa", "version": 1, "label": "production"}, 400),
        "concurrency": ({"prompt": "qa", "concurrency": 0}, 400),
        "unknown field": ({"prompt": "qa", "bogus": 1}, 400),
    }
    for name, (body, status) in bad.items():
        response = gateway.admin.post("/admin/test-runs", json=body)
        assert response.status_code == status, (name, response.text)
    listed = gateway.admin.get("/admin/test-runs", params={"prompt": "qa"}).json()["data"]
    assert len(listed) == 2  # nothing half-created


def test_case_variables_must_fit_the_version(gateway: RunningGateway) -> None:
    suite_prompt(
        gateway,
        "greet",
        {
            "messages": [{"role": "system", "content": "Greet {{name}}."}],
            "variables": ["name"],
            "model": "gpt-4o-mini",
        },
    )
    add_case(gateway, "greet", "ok", "#echo", variables={"name": "Ada"})
    add_case(gateway, "greet", "missing", "#echo", variables={})
    error = error_of(gateway.admin.post("/admin/test-runs", json={"prompt": "greet"}), 400)
    assert "missing" in error["message"] and "name" in error["message"]
    assert gateway.admin.get("/admin/test-runs").json()["data"] == []
