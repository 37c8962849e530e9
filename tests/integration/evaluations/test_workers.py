"""`sluice worker` processes on real Redis and Postgres: a worker killed with SIGKILL mid-job,
dead letters, and the sweep recovering a queue that Redis lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import redis as redis_sync

from gateway.evaluations.records import Job
from gateway.evaluations.redis_queue import GROUP, PREFIX
from sluice_devtools.fake_upstream import FakeUpstreamThread
from sluice_devtools.server_thread import free_port
from tests.conftest import UPSTREAM_KEY, GatewayFactory, RunningGateway
from tests.e2e.evaluations_support import (
    GOOD_JUDGE_REPLY,
    ask,
    evaluations,
    monitored_prompt,
    wait_for_evaluations,
)

pytestmark = pytest.mark.redis

SLUICE = str(Path(sys.executable).parent / "sluice")
JOBS = PREFIX + "jobs"
JUDGE_DELAY_MS = 1000

WorkerFactory = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def start_worker(fake_upstream: FakeUpstreamThread, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start `sluice worker` processes; every one still running is stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(database_url: str, redis_url: str, name: str, *args: str, **env: str) -> Any:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        settings = {
            "SLUICE_DATABASE_URL": database_url,
            "SLUICE_REDIS_URL": redis_url,
            "SLUICE_UPSTREAM_BASE_URL": fake_upstream.base_url,
            "SLUICE_UPSTREAM_API_KEY": UPSTREAM_KEY,
            "SLUICE_LOG_FLUSH_INTERVAL": "0.05",
            **env,
        }
        with (tmp_path / f"{name}.log").open("wb") as log:  # the child keeps its own copy
            process = subprocess.Popen(
                [SLUICE, "worker", "--name", name, *args],
                env={**clean, **settings},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _pending_of(client: redis_sync.Redis, consumer: str) -> int:
    for row in client.xpending_range(JOBS, GROUP, "-", "+", 1000):
        if row["consumer"].decode() == consumer:
            return 1
    return 0


def _judge_calls(fake: FakeUpstreamThread, marker: str) -> int:
    return sum(
        1
        for r in list(fake.requests)
        if r.body.get("messages")
        and "impartial evaluator" in str(r.body["messages"][0].get("content"))
        and marker in str(r.body["messages"][-1].get("content"))
    )


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_worker_killed_mid_job_loses_nothing_and_doubles_nothing(
    start_gateway: GatewayFactory,
    start_worker: WorkerFactory,
    database_url: str,
    redis_url: str,
    fake_upstream: FakeUpstreamThread,
) -> None:
    gateway = start_gateway(database_url, SLUICE_REDIS_URL=redis_url)
    marker = f"kill-{time.time_ns()}"
    monitored_prompt(
        gateway,
        "killed",
        {
            "evaluator_key": "llm_judge",
            # The fake reads directives in the judge's prompt: each judge call takes a second.
            "config": {
                "rubric": f"Polite. #delay={JUDGE_DELAY_MS} {marker}",
                "model": "gpt-4o-mini",
            },
        },
    )
    client = gateway.openai()
    ids = [ask(client, "killed", "#reply=" + GOOD_JUDGE_REPLY) for _ in range(16)]
    redis = redis_sync.Redis.from_url(redis_url)
    _wait(lambda: redis.xlen(JOBS) == 16, 10, "16 jobs in the stream")

    env = {"SLUICE_EVAL_CONCURRENCY": "4", "SLUICE_EVAL_CLAIM_AFTER": "1"}
    doomed = start_worker(database_url, redis_url, "doomed", **env)
    # Killed while its judge calls are in flight (each takes a second at the fake).
    _wait(lambda: _judge_calls(fake_upstream, marker) > 0, 60, "the doomed worker's judge calls")
    assert _pending_of(redis, "doomed")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    assert doomed.returncode == -signal.SIGKILL
    start_worker(database_url, redis_url, "survivor", **env)

    rows = wait_for_evaluations(gateway, 16, timeout=90, prompt="killed")
    assert sorted(row["request_id"] for row in rows) == sorted(ids)
    assert all(row["error"] is None and row["score"] == 0.75 for row in rows)
    _wait(lambda: redis.xlen(JOBS) == 0, 10, "the stream to empty")
    assert redis.xpending(JOBS, GROUP)["pending"] == 0
    # The killed worker's jobs were judged again by the survivor, yet scored once.
    assert _judge_calls(fake_upstream, marker) > 16
    assert len(evaluations(gateway, prompt="killed")) == 16
    redis.close()


def test_failing_jobs_go_to_the_dead_letters_and_can_be_requeued(
    start_gateway: GatewayFactory,
    start_worker: WorkerFactory,
    sqlite_url: str,
    redis_url: str,
) -> None:
    gateway = start_gateway(sqlite_url, SLUICE_REDIS_URL=redis_url)
    redis = redis_sync.Redis.from_url(redis_url)
    # A job for a response that does not exist fails every time.
    redis.xadd(JOBS, {"job": b'{"request_log_id":"vanished"}'})
    port = free_port()
    start_worker(
        sqlite_url,
        redis_url,
        "lonely",
        "--metrics-port",
        str(port),
        SLUICE_EVAL_CLAIM_AFTER="0.2",
        SLUICE_EVAL_MAX_FAILURES="2",
    )

    def letters() -> list[dict[str, Any]]:
        page = gateway.admin.get("/admin/evaluations/dead-letters").json()
        data: list[dict[str, Any]] = page["data"]
        return data

    _wait(lambda: len(letters()) == 1, 60, "a dead letter")
    [letter] = letters()
    assert letter["job"] == {"request_log_id": "vanished"}
    assert letter["failures"] == 2
    assert letter["error"] == "no logged response with id 'vanished'"
    _wait(
        lambda: 'sluice_evaluation_queue_jobs{state="dead"} 1.0' in _metrics(gateway), 10, "gauge"
    )
    worker_metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert 'sluice_evaluation_jobs_total{outcome="dead_lettered"} 1.0' in worker_metrics
    assert 'sluice_evaluation_jobs_total{outcome="failed"} 2.0' in worker_metrics

    requeued = gateway.admin.post(f"/admin/evaluations/dead-letters/{letter['id']}/requeue")
    assert requeued.status_code == 200 and requeued.json()["requeued"] is True
    missing = gateway.admin.post(f"/admin/evaluations/dead-letters/{letter['id']}/requeue")
    assert missing.status_code == 404
    _wait(lambda: len(letters()) == 1 and letters()[0]["id"] != letter["id"], 60, "buried again")
    redis.close()


def _metrics(gateway: RunningGateway) -> str:
    return gateway.http.get("/metrics").text


def test_the_sweep_recovers_responses_whose_jobs_redis_lost(
    start_gateway: GatewayFactory,
    start_worker: WorkerFactory,
    sqlite_url: str,
    redis_url: str,
) -> None:
    gateway = start_gateway(sqlite_url, SLUICE_REDIS_URL=redis_url)
    monitored_prompt(gateway, "swept", {"evaluator_key": "json_valid", "run_mode": "queued"})
    client = gateway.openai()
    production = [ask(client, "swept", "#json") for _ in range(5)]
    test_run = ask(client, "swept", "#json", {"X-Sluice-Test-Run": "true"})
    gateway.wait_for_rows(6, prompt="swept")
    redis = redis_sync.Redis.from_url(redis_url)
    _wait(lambda: redis.xlen(JOBS) == 5, 10, "5 jobs in the stream")
    redis.flushdb()  # the queue is gone; only the database knows what was never evaluated
    start_worker(
        sqlite_url,
        redis_url,
        "sweeper",
        SLUICE_EVAL_SWEEP_GRACE="0.2",
        SLUICE_EVAL_SWEEP_INTERVAL="0.3",
    )
    rows = wait_for_evaluations(gateway, 5, timeout=60, prompt="swept")
    assert sorted(row["request_id"] for row in rows) == sorted(production)
    assert evaluations(gateway, request_id=test_run) == []
    assert all(row["passed"] for row in rows)
    redis.close()


def test_worker_needs_redis() -> None:
    result = subprocess.run(
        [SLUICE, "worker"],
        env={k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "needs SLUICE_REDIS_URL" in result.stderr


def test_a_job_enqueued_by_hand_is_valid() -> None:
    # The dead-letter test writes a job by hand; keep it in step with the gateway's encoding.
    assert msgspec.json.encode(Job(request_log_id="vanished")) == b'{"request_log_id":"vanished"}'


def test_inline_results_travel_with_the_job_and_a_worker_stores_them(
    start_gateway: GatewayFactory,
    start_worker: WorkerFactory,
    sqlite_url: str,
    redis_url: str,
) -> None:
    gateway = start_gateway(sqlite_url, SLUICE_REDIS_URL=redis_url)
    [contains] = monitored_prompt(
        gateway, "carried", {"evaluator_key": "contains", "config": {"value": "w2"}}
    )
    request_id = ask(gateway.openai(), "carried", "#words=2")
    redis = redis_sync.Redis.from_url(redis_url)
    _wait(lambda: redis.xlen(JOBS) == 1, 10, "the response's job")
    [(_, fields)] = redis.xrange(JOBS)
    job = msgspec.json.decode(fields[b"job"], type=Job)
    [carried] = job.inline
    assert (carried.spec_id, carried.score, carried.passed) == (contains["id"], 1.0, True)
    assert evaluations(gateway, request_id=request_id) == []  # the gateway writes nothing
    start_worker(sqlite_url, redis_url, "storer")
    [row] = wait_for_evaluations(gateway, 1, timeout=60, request_id=request_id)
    assert (row["evaluator_config_id"], row["score"], row["passed"]) == (contains["id"], 1.0, True)
    redis.close()
