"""Hostile evaluator configs: backtracking regexes, schemas that fetch, nest or overrun.

A `regex` evaluator such as `(.*a){25}x` once froze the whole gateway on a 41-character reply,
a schema `$ref` to `http://...` made the gateway fetch it, and a 900-deep schema was a 500.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import msgspec
import openai
import pytest
import redis as redis_sync

from gateway.evaluations.records import Job
from gateway.evaluations.redis_queue import PREFIX
from sluice_devtools.fake_upstream import FakeUpstreamThread
from sluice_devtools.server_thread import free_port
from tests.conftest import ADMIN_TOKEN, UPSTREAM_KEY, GatewayFactory, RunningGateway
from tests.e2e.evaluations_support import ask, attach, monitored_prompt, wait_for_evaluations
from tests.e2e.prompts_support import make_prompt, set_label, system

SLUICE = str(Path(sys.executable).parent / "sluice")
HOSTILE_A = "a" * 40 + "!"
HOSTILE_REPLY = json.dumps({"a": HOSTILE_A, "x": "x" * 40 + "!"})
BACKTRACKING = [r"(.*a){25}x", r"(a|aa)+$", r"(a+)+$", r"(\w+\s?)*$", r"(x+x+)+y"]
HEALTHZ_BUDGET_S = 1.0


@pytest.fixture
def served(fake_upstream: FakeUpstreamThread, sqlite_url: str, tmp_path: Path) -> Iterator[Any]:
    """`sluice serve` in its own process: if an evaluator freezes it, this test still runs."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env = {
        **clean,
        "SLUICE_DATABASE_URL": sqlite_url,
        "SLUICE_ADMIN_TOKEN": ADMIN_TOKEN,
        "SLUICE_UPSTREAM_BASE_URL": fake_upstream.base_url,
        "SLUICE_UPSTREAM_API_KEY": UPSTREAM_KEY,
        "SLUICE_LOG_FLUSH_INTERVAL": "0.05",
    }
    with (tmp_path / "gateway.log").open("wb") as log:
        process = subprocess.Popen(
            [SLUICE, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None, (tmp_path / "gateway.log").read_text()
        assert time.monotonic() < deadline, "the gateway never came up"
        time.sleep(0.05)
    yield process, base
    if process.poll() is None:
        process.kill()
        process.wait()


def test_backtracking_patterns_never_stall_the_gateway(served: Any) -> None:
    process, base = served
    admin = httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=5
    )
    created = admin.post("/admin/prompts", json={"slug": "hostile", "description": "x"})
    assert created.status_code == 201, created.text
    version = admin.post("/admin/prompts/hostile/versions", json=system("Answer."))
    assert version.status_code == 201, version.text
    label = admin.put("/admin/prompts/hostile/labels/production", json={"version": 1})
    assert label.status_code == 200, label.text
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a+)+$"}}}
    bodies = [
        {"evaluator_key": "regex", "config": {"pattern": p}, "run_mode": "inline"}
        for p in BACKTRACKING
    ] + [{"evaluator_key": "json_schema", "config": {"schema": schema}, "run_mode": "inline"}]
    spec_ids = {}
    for body in bodies:
        response = admin.post("/admin/prompts/hostile/versions/1/evaluators", json=body)
        assert response.status_code == 201, response.text
        spec_ids[response.json()["id"]] = body
    key = admin.post("/admin/keys", json={"name": "hostile"}).json()["key"]

    client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=5)
    request_id = ask(client, "hostile", "#reply=" + HOSTILE_REPLY)
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while len(rows) < len(bodies):
        # Throughout, the gateway answers its health check promptly.
        assert httpx.get(f"{base}/healthz", timeout=HEALTHZ_BUDGET_S).status_code == 200
        rows = admin.get("/admin/evaluations", params={"request_id": request_id}).json()["data"]
        assert time.monotonic() < deadline, f"only {len(rows)} evaluations were written"
        time.sleep(0.05)
    by_spec = {row["evaluator_config_id"]: row for row in rows}
    for spec_id, body in spec_ids.items():
        row = by_spec[spec_id]
        assert row["error"] is None, row
        pattern = body["config"].get("pattern")
        assert row["passed"] is (pattern == r"(\w+\s?)*$"), (body, row)  # it matches at the end
    client.close()
    admin.close()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) is not None  # SIGTERM is heard, not ignored


class _Counting(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server: Any = self.server
        server.hits.append(self.path)
        body = b'{"type": "string"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def listener() -> Iterator[Any]:
    """A tiny schema server on 127.0.0.1 that counts every fetch."""
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    server.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _refused(response: httpx.Response, param: str | None, fragment: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error", error
    assert fragment in error["message"], error


def test_no_schema_ref_is_ever_fetched(gateway: RunningGateway, listener: Any) -> None:
    server, url = listener
    local_only = {
        "$id": f"{url}/base.json",
        "$ref": "#/$defs/answer",
        "$defs": {"answer": {"type": "object", "required": ["answer"]}},
    }
    remote = [
        {"$ref": f"{url}/remote.json"},
        {"$id": f"{url}/base.json", "$ref": "other.json"},
        {"properties": {"a": {"$ref": f"{url}/a.json#/x"}}},
        {"$dynamicRef": f"{url}/meta#meta"},
        {"$ref": "file:///etc/passwd"},
    ]
    monitored_prompt(gateway, "refs")
    for schema in remote:
        body = {"evaluator_key": "json_schema", "config": {"schema": schema}}
        response = gateway.admin.post("/admin/prompts/refs/versions/1/evaluators", json=body)
        _refused(response, "config.schema", "points outside the schema")
    accepted = attach(
        gateway, "refs", 1, {"evaluator_key": "json_schema", "config": {"schema": local_only}}
    )

    for field in ("response_schema", "variables_schema"):
        for schema in remote:
            nested = {"type": "object", "properties": {"city": schema}}
            version = system("Answer about {{city}}.", variables=["city"], **{field: nested})
            response = gateway.admin.post("/admin/prompts/refs/versions", json=version)
            _refused(response, field, "points outside the schema")

    evaluator = {"evaluator_key": "json_schema", "config": {"schema": remote[0]}}
    case = {"name": "c1", "messages": [{"role": "user", "content": "#json"}]}
    response = gateway.admin.post(
        "/admin/prompts/refs/tests", json={**case, "evaluators": [evaluator]}
    )
    _refused(response, "config.schema", "points outside the schema")
    suite = json.dumps({**case, "evaluators": [evaluator]}) + "\n"
    response = gateway.admin.post("/admin/prompts/refs/tests/import", content=suite)
    assert response.status_code == 400, response.text
    assert "points outside the schema" in response.json()["error"]["message"]

    # Schemas with an $id at the listener but only local refs are fine, and still fetch nothing.
    make_prompt(
        gateway,
        "ids",
        system(
            "Answer about {{city}}.",
            variables=["city"],
            variables_schema={**local_only, "$defs": {"answer": {"type": "object"}}},
            response_schema=local_only,
        ),
    )
    set_label(gateway, "ids", "production", 1)
    schema_eval = attach(gateway, "ids", 1, {"evaluator_key": "json_schema"})
    client = gateway.openai()
    request_id = ask(client, "refs", "#json")
    ids_request = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "#json"}],
        extra_headers={"X-Sluice-Prompt": "ids"},
        extra_body={"sluice": {"variables": {"city": "Paris"}}},
    )
    ids_request.parse()
    ids_id = ids_request.headers["x-sluice-request-id"]
    [row] = wait_for_evaluations(gateway, 1, request_id=request_id)
    assert (row["evaluator_config_id"], row["passed"], row["error"]) == (accepted["id"], True, None)
    [row] = wait_for_evaluations(gateway, 1, request_id=ids_id)
    assert (row["evaluator_config_id"], row["passed"]) == (schema_eval["id"], True), row
    assert server.hits == []


def _deep(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "array", "items": schema}
    return schema


def test_a_schema_900_deep_or_too_large_is_a_400(sqlite_gateway: RunningGateway) -> None:
    gateway = sqlite_gateway
    monitored_prompt(gateway, "deep")
    deep = _deep(900)
    large = {"type": "object", "properties": {f"p{i}": {"const": "v" * 300} for i in range(1000)}}
    # The request body's own depth bound (64 levels, gateway/input_bounds.py) refuses the deep
    # schema before the schema check sees it; the schema's bound is unit-tested in
    # tests/unit/evaluators/test_safe_schema.py for schemas that arrive by other ways.
    for schema, fragment in ((deep, "levels deep"), (large, "bytes serialized")):
        param = None if schema is deep else "config.schema"
        body = {"evaluator_key": "json_schema", "config": {"schema": schema}}
        response = gateway.admin.post("/admin/prompts/deep/versions/1/evaluators", json=body)
        _refused(response, param, fragment)
        for field in ("response_schema", "variables_schema"):
            wrapped = {"type": "object", "properties": {"x": schema}}
            response = gateway.admin.post(
                "/admin/prompts/deep/versions", json=system("Hi.", **{field: wrapped})
            )
            _refused(response, None if schema is deep else field, fragment)


def test_patterns_re2_cannot_run_are_refused_with_the_reason(
    sqlite_gateway: RunningGateway,
) -> None:
    gateway = sqlite_gateway
    monitored_prompt(gateway, "re2")
    for pattern, why in ((r"(a)\1", "backreferences"), ("a(?=b)", "lookahead")):
        body = {"evaluator_key": "regex", "config": {"pattern": pattern}}
        response = gateway.admin.post("/admin/prompts/re2/versions/1/evaluators", json=body)
        _refused(response, "config.pattern", why)
        schema = {"type": "object", "patternProperties": {pattern: {"type": "string"}}}
        body = {"evaluator_key": "json_schema", "config": {"schema": schema}}
        response = gateway.admin.post("/admin/prompts/re2/versions/1/evaluators", json=body)
        _refused(response, "config.schema", why)
        response = gateway.admin.post(
            "/admin/prompts/re2/versions",
            json=system("Hi.", response_schema={"type": "string", "pattern": pattern}),
        )
        _refused(response, "response_schema", why)


def test_an_overrun_budget_is_an_error_result_that_the_sweep_leaves_alone(
    start_gateway: GatewayFactory, database_url: str
) -> None:
    # A budget no offloaded comparison can meet; the sweep counts every response as lost
    # unless it has results, and runs only when asked to here.
    gateway = start_gateway(
        database_url,
        SLUICE_EVAL_TIMEOUT="0.000001",
        SLUICE_EVAL_SWEEP_GRACE="0.01",
        SLUICE_EVAL_SWEEP_INTERVAL="3600",
    )
    expected = " ".join(f"v{i}" for i in range(5000))
    configs = monitored_prompt(
        gateway,
        "budget",
        {"evaluator_key": "levenshtein", "config": {"expected": expected}, "run_mode": "queued"},
        {"evaluator_key": "rouge_l", "config": {"expected": expected}, "run_mode": "inline"},
        {"evaluator_key": "contains", "config": {"value": "w1"}, "run_mode": "inline"},
    )
    request_id = ask(gateway.openai(), "budget", "#words=5000")
    rows = wait_for_evaluations(gateway, 3, request_id=request_id)
    by_spec = {row["evaluator_config_id"]: row for row in rows}
    for config in configs[:2]:
        row = by_spec[config["id"]]
        assert row["error"] == "timed out after 1e-06 s", row
        assert row["passed"] is False
    assert by_spec[configs[2]["id"]]["passed"] is True  # a check that never waits still scores

    swept = gateway.admin.post("/admin/evaluations/sweep")
    assert swept.status_code == 200, swept.text
    assert swept.json()["enqueued"] == 0
    assert len(wait_for_evaluations(gateway, 3, request_id=request_id)) == 3


def test_the_sweep_does_not_requeue_a_dead_lettered_job(
    start_gateway: GatewayFactory, sqlite_url: str, redis_url: str
) -> None:
    # With Redis and no worker running, jobs stay in the stream, where this test can move one
    # to the dead letters (as a worker would after SLUICE_EVAL_MAX_FAILURES failures).
    gateway = start_gateway(sqlite_url, SLUICE_REDIS_URL=redis_url, SLUICE_EVAL_SWEEP_GRACE="0.01")
    monitored_prompt(gateway, "dead", {"evaluator_key": "json_valid", "run_mode": "queued"})
    client = gateway.openai()
    buried, lost = ask(client, "dead", "#json"), ask(client, "dead", "#json")
    gateway.wait_for_rows(2, prompt="dead")
    redis = redis_sync.Redis.from_url(redis_url)
    deadline = time.monotonic() + 10
    while redis.xlen(PREFIX + "jobs") < 2:
        assert time.monotonic() < deadline, "the jobs never reached the stream"
        time.sleep(0.02)
    log_ids = {row["request_id"]: row["id"] for row in gateway.wait_for_rows(2, prompt="dead")}
    redis.delete(PREFIX + "jobs")  # both jobs gone from the queue ...
    job = msgspec.json.encode(Job(request_log_id=log_ids[buried])).decode()
    redis.xadd(  # ... and one of them dead-lettered
        PREFIX + "dead",
        {"job": job, "error": "boom", "failures": 5, "failed_at": "2026-01-01T00:00:00+00:00"},
    )
    swept = gateway.admin.post("/admin/evaluations/sweep")
    assert swept.status_code == 200, swept.text
    assert swept.json()["enqueued"] == 1  # the lost one only
    [entry] = redis.xrange(PREFIX + "jobs")
    assert msgspec.json.decode(entry[1][b"job"])["request_log_id"] == log_ids[lost]
    redis.close()
