"""Test runs under pressure: budgets, a flaky upstream, cancellation, a killed process, the
comparison and gate, and the `sluice test` command line's exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice_devtools.fake_upstream import FakeUpstreamThread
from sluice_devtools.server_thread import free_port
from tests.conftest import ADMIN_TOKEN, UPSTREAM_KEY, GatewayFactory, RunningGateway
from tests.e2e.prompts_support import system
from tests.e2e.testing_support import (
    add_case,
    error_of,
    get_run,
    results,
    start_run,
    suite_prompt,
    wait_for_run,
)

SLUICE = str(Path(sys.executable).parent / "sluice")
EXACT = {"evaluator_key": "exact_match"}


@pytest.fixture
def quick_gateway(start_gateway: GatewayFactory, database_url: str) -> RunningGateway:
    return start_gateway(
        database_url, SLUICE_TEST_RUN_HEARTBEAT="0.05", SLUICE_TEST_RUN_BACKOFF="0.02"
    )


def test_a_run_its_budget_cannot_hold_is_refused_with_the_estimate(
    quick_gateway: RunningGateway,
) -> None:
    gateway = quick_gateway
    suite_prompt(gateway, "qa")
    for n in range(3):
        add_case(gateway, "qa", f"case {n}", "#reply=ok")
    budget = gateway.admin.post(
        "/admin/budgets",
        json={"scope": "prompt", "scope_value": "qa", "period": "daily", "limit_usd": "0.001"},
    ).json()
    refused = gateway.admin.post("/admin/test-runs", json={"prompt": "qa"})
    error = error_of(refused, 402)
    assert error["code"] == "budget_exceeded" and "3 cases could cost up to $" in error["message"]
    estimate = float(refused.headers["x-sluice-estimated-cost-usd"])
    assert estimate > 0.001  # three cases at the 4096-token output cap
    assert gateway.admin.get("/admin/test-runs").json()["data"] == []
    status = gateway.admin.get(f"/admin/budgets/{budget['id']}").json()
    assert status["reserved_usd"] == 0  # the partial holds were released

    gateway.admin.patch(f"/admin/budgets/{budget['id']}", json={"limit_usd": "1"})
    run = start_run(gateway, prompt="qa", budget_id=budget["id"])
    assert run["estimated_cost_usd"] == pytest.approx(estimate)
    done = wait_for_run(gateway, run["id"])
    assert done["status"] == "completed" and done["passed"] == 3
    status = gateway.admin.get(f"/admin/budgets/{budget['id']}").json()
    assert status["reserved_usd"] == 0
    assert status["spent_usd"] == pytest.approx(done["cost_usd"])


def test_upstream_failures_are_retried_then_recorded_on_the_case(
    quick_gateway: RunningGateway, fake_upstream: FakeUpstreamThread
) -> None:
    gateway = quick_gateway
    suite_prompt(gateway, "qa")
    key = uuid.uuid4().hex
    add_case(
        gateway,
        "qa",
        "flaky",
        f"#fault=flaky:2 #key={key} #reply=ok",
        expected_output="ok",
        evaluators=[EXACT],
    )
    add_case(gateway, "qa", "down", "#fault=500")
    add_case(gateway, "qa", "refused", "#fault=400")
    run = wait_for_run(gateway, start_run(gateway, prompt="qa")["id"])
    assert run["status"] == "completed"
    rows = {row["name"]: row for row in results(gateway, run["id"])}
    assert (rows["flaky"]["status"], rows["flaky"]["attempts"]) == ("passed", 3)
    assert (rows["down"]["status"], rows["down"]["attempts"]) == ("error", 3)
    assert "HTTP 500" in rows["down"]["error"] and "after 3 attempts" in rows["down"]["error"]
    assert (rows["refused"]["status"], rows["refused"]["attempts"]) == ("error", 1)
    assert (run["passed"], run["failed"], run["errored"]) == (1, 2, 2)


def test_cancelling_a_run(quick_gateway: RunningGateway) -> None:
    gateway = quick_gateway
    suite_prompt(gateway, "qa")
    for n in range(8):
        add_case(gateway, "qa", f"slow {n}", "#delay=200 #reply=ok")
    run = start_run(gateway, prompt="qa", concurrency=1)
    while get_run(gateway, run["id"])["completed"] < 1:
        time.sleep(0.02)
    cancelled = gateway.admin.post(f"/admin/test-runs/{run['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"] is True
    done = wait_for_run(gateway, run["id"])
    assert done["status"] == "cancelled" and 1 <= done["completed"] < 8
    statuses = [row["status"] for row in results(gateway, run["id"])]
    assert statuses.count("cancelled") == 8 - done["completed"]
    again = gateway.admin.post(f"/admin/test-runs/{run['id']}/cancel")
    assert error_of(again, 409)["code"] == "conflict"
    assert error_of(gateway.admin.post("/admin/test-runs/nope/cancel"), 404)


def test_comparison_and_gate_and_the_command_line(sqlite_gateway: RunningGateway) -> None:
    gateway = sqlite_gateway  # one database: the command line is what this test is about
    # v1 answers every case right; v2 (a new model param) breaks "capital".
    suite_prompt(
        gateway,
        "qa",
        system("Answer briefly.", model="gpt-4o-mini"),
        system("Answer at length.", model="gpt-4o-mini"),
    )
    contains = {"evaluator_key": "contains", "config": {"value": "Paris"}}
    add_case(gateway, "qa", "capital", "#reply=Paris", evaluators=[contains])
    add_case(gateway, "qa", "other", "#reply=Lyon", evaluators=[contains])
    env = {"SLUICE_URL": gateway.base_url, "SLUICE_ADMIN_TOKEN": ADMIN_TOKEN}

    first = _sluice(["test", "run", "qa", "--version", "1"], **env)
    assert first.returncode == 1, first.stderr  # "other" fails: the run's own gate is closed
    assert "pass 1" in first.stderr and "fail 1" in first.stderr  # the progress bar
    assert "capital" in first.stdout and "gate FAIL" in first.stdout
    baseline = get_runs(gateway)[0]

    # Same cases, a model override: nothing regresses against the baseline.
    second = _sluice(
        [
            "test",
            "run",
            "qa",
            "--label",
            "production",
            "--model",
            "gpt-4o",
            "--compare-to",
            baseline["id"],
        ],
        **env,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "gate PASS" in second.stdout
    candidate = get_runs(gateway)[0]
    assert candidate["model"] == "gpt-4o"

    # Make "capital" fail now: a regression closes the gate.
    [case] = [c for c in _cases(gateway) if c["name"] == "capital"]
    gateway.admin.patch(
        f"/admin/tests/{case['id']}",
        json={"messages": [{"role": "user", "content": "#reply=Rome"}]},
    )
    third = start_run(gateway, prompt="qa", version=2)
    wait_for_run(gateway, third["id"])
    view = get_run(gateway, third["id"], compare_to=baseline["id"])
    comparison = view["comparison"]
    assert comparison["gate"] is False and comparison["regressed"] == 1
    changes = {c["name"]: c for c in comparison["cases"]}
    assert changes["capital"]["change"] == "regressed"
    assert changes["capital"]["score_delta"] == -1.0
    assert changes["capital"]["regressed_evaluators"] == ["contains"]
    assert changes["other"]["change"] == "failing"
    assert comparison["mean_score_delta"] == pytest.approx(-0.5)
    cli = _sluice(["test", "compare", baseline["id"], third["id"]], **env)
    assert cli.returncode == 1 and "regressed" in cli.stdout and "gate FAIL" in cli.stdout
    same = _sluice(["test", "compare", baseline["id"], candidate["id"]], **env)
    assert same.returncode == 0 and "gate PASS" in same.stdout
    missing = _sluice(["test", "run", "nope"], **env)
    assert missing.returncode == 2 and "No prompt with slug 'nope'" in missing.stderr


def get_runs(gateway: RunningGateway) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = gateway.admin.get("/admin/test-runs").json()["data"]
    return runs


def _cases(gateway: RunningGateway) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = gateway.admin.get("/admin/prompts/qa/tests").json()["data"]
    return cases


def _sluice(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SLUICE, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("max_starts", ["3", "1"], ids=["resumed", "failed"])
def test_a_run_survives_the_death_of_its_process(
    start_gateway: GatewayFactory,
    sqlite_url: str,
    fake_upstream: FakeUpstreamThread,
    max_starts: str,
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SLUICE_DATABASE_URL": sqlite_url,
        "SLUICE_ADMIN_TOKEN": ADMIN_TOKEN,
        "SLUICE_UPSTREAM_BASE_URL": fake_upstream.base_url,
        "SLUICE_UPSTREAM_API_KEY": UPSTREAM_KEY,
        "SLUICE_PORT": str(port),
        "SLUICE_TEST_RUN_HEARTBEAT": "0.1",
        "SLUICE_LOG_FLUSH_INTERVAL": "0.05",
    }
    process = subprocess.Popen([SLUICE, "serve"], env=env, stderr=subprocess.DEVNULL)
    admin = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    try:
        _wait_until_up(admin)
        doomed = RunningGatewayView(admin)
        suite_prompt(doomed, "qa")  # type: ignore[arg-type]
        for n in range(10):
            add_case(
                doomed,
                "qa",
                f"case {n}",
                "#delay=150 #reply=ok",  # type: ignore[arg-type]
                expected_output="ok",
                evaluators=[EXACT],
            )
        run = start_run(doomed, prompt="qa", concurrency=1)  # type: ignore[arg-type]
        deadline = time.monotonic() + 20
        while get_run(doomed, run["id"])["completed"] < 2:  # type: ignore[arg-type]
            assert time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        admin.close()
        if process.poll() is None:
            process.kill()
    survivor = start_gateway(
        sqlite_url,
        SLUICE_TEST_RUN_HEARTBEAT="0.1",
        SLUICE_TEST_RUN_STALE_AFTER="1",
        SLUICE_TEST_RUN_MAX_STARTS=max_starts,
    )
    done = wait_for_run(survivor, run["id"])
    if max_starts == "1":  # not resumed: failed, with the reason, never stuck in running
        assert done["status"] == "failed" and "not resumed again" in done["error"], done
        statuses = {row["status"] for row in results(survivor, run["id"])}
        assert statuses <= {"passed", "cancelled"} and "cancelled" in statuses
        return
    assert done["status"] == "completed", done
    assert (done["passed"], done["total"], done["starts"]) == (10, 10, 2)
    rows = results(survivor, run["id"])
    assert [row["status"] for row in rows] == ["passed"] * 10
    assert all(row["evaluations"] for row in rows)


class RunningGatewayView:
    """Enough of RunningGateway (the admin client) for the support helpers."""

    def __init__(self, admin: httpx.Client) -> None:
        self.admin = admin


def _wait_until_up(client: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError("the gateway did not come up")
