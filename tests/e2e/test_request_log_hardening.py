"""The request log under hostile input: no row blocks the log, a stuck writer is not ready,
a reused request id is one row each, and log lines stay one line."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from gateway.requestlog.storable import CUT_MARKER, REPLACEMENT
from tests.conftest import GatewayFactory, RunningGateway

N = 12


def _glob_routed(
    start_gateway: GatewayFactory, url: str, tmp_path: Path, **env: str
) -> RunningGateway:
    config = tmp_path / "sluice.toml"
    config.write_text('[[routes]]\nmodels = ["*"]\n')
    return start_gateway(url, SLUICE_CONFIG=str(config), **env)


def test_a_poison_request_neither_stops_the_log_nor_is_lost(
    start_gateway: GatewayFactory, database_url: str, tmp_path: Path
) -> None:
    gateway = _glob_routed(start_gateway, database_url, tmp_path)
    client = gateway.openai()
    model = "m" * 300
    poison = client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": "nul\u0000here"}],
        # A NUL in sluice.user/session/tags is a 400 now (test_bad_input_endpoints); message
        # content is the client's own text and goes upstream, so only the log can make it fit.
        extra_body={"sluice": {"user": "poison-user"}},
    )
    assert poison.http_response.status_code == 200
    poison_id = poison.headers["x-sluice-request-id"]
    sent = [poison_id]
    for i in range(N):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"normal {i}"}]
        )
        sent.append(raw.headers["x-sluice-request-id"])
    rows = gateway.wait_for_rows(N + 1)
    assert {row["request_id"] for row in rows} == set(sent)

    row = gateway.admin.get(f"/admin/responses/{poison_id}").json()
    assert row["model_requested"] == "m" * (200 - len(CUT_MARKER)) + CUT_MARKER
    assert row["request_body"]["messages"][0]["content"] == f"nul{REPLACEMENT}here"
    # Stored the same on both databases, and filterable by what was stored.
    by_user = gateway.wait_for_rows(1, user="poison-user")
    assert [r["request_id"] for r in by_user] == [poison_id]
    metrics = gateway.http.get("/metrics").text
    assert "sluice_request_log_dead_letters_total 0.0" in metrics
    assert gateway.http.get("/readyz").status_code == 200


def test_a_reused_request_id_is_two_distinct_rows(gateway: RunningGateway) -> None:
    client = gateway.openai()
    ids = []
    for content in ("first", "second"):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": content}],
            extra_headers={"X-Sluice-Request-Id": "order-42"},
        )
        assert raw.http_response.status_code == 200
        ids.append(raw.headers["x-sluice-request-id"])
    assert ids == ["order-42", "order-42"]
    rows = gateway.wait_for_rows(2)
    request_ids = sorted(row["request_id"] for row in rows)
    assert len(set(request_ids)) == 2
    assert request_ids[0] == "order-42"
    renamed = next(row for row in rows if row["request_id"] != "order-42")
    assert renamed["request_id"] == f"order-42~{renamed['id']}"
    first = gateway.admin.get("/admin/responses/order-42").json()
    assert first["request_body"]["messages"][0]["content"] == "first"
    second = gateway.admin.get(f"/admin/responses/{renamed['request_id']}").json()
    assert second["request_body"]["messages"][0]["content"] == "second"


@contextmanager
def _write_lock(database_url: str) -> Iterator[None]:
    """Another session holds the request log's write lock until the block ends."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("COMMIT")
            holder.close()
        return
    plain = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as holder:
        holder.execute("LOCK TABLE request_logs IN ACCESS EXCLUSIVE MODE")
        yield
        holder.commit()


def _until(check: Callable[[], httpx.Response], status: int, timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = check()
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def test_readyz_reports_a_stuck_log_writer_and_recovers(
    start_gateway: GatewayFactory, database_url: str
) -> None:
    gateway = start_gateway(database_url, SLUICE_LOG_STALL_AFTER="0.5")
    client = gateway.openai()
    assert gateway.http.get("/readyz").status_code == 200
    with _write_lock(database_url):
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "while locked"}]
        )
        assert reply.choices[0].message.content
        stuck = _until(lambda: gateway.http.get("/readyz"), 503, timeout=20)
        assert stuck.status_code == 503, stuck.text
        body = stuck.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"] == "ok"  # it answers; it just does not take the rows
        assert body["checks"]["request_log"].startswith("stalled: 1 rows waiting")
        assert "SLUICE_LOG_STALL_AFTER" in body["checks"]["request_log"]
    recovered = _until(lambda: gateway.http.get("/readyz"), 200, timeout=40)
    assert recovered.status_code == 200, recovered.text
    assert recovered.json()["checks"]["request_log"] == "ok"
    assert len(gateway.wait_for_rows(1)) == 1


@pytest.mark.redis
def test_a_crlf_in_a_budget_scope_value_never_reaches_a_log_line(
    start_gateway: GatewayFactory, sqlite_url: str, redis_url: str
) -> None:
    """CR/LF in the values a budget alert logs is refused where it enters (the admin API and
    the request's identifier fields); the formatter that escapes whatever else gets through is
    tested in tests/unit/test_log_format.py."""
    setup = start_gateway(sqlite_url, SLUICE_REDIS_URL=redis_url)
    user = "eve\r\n2026-01-01 00:00:00,000 ERROR sluice: FORGED"
    refused = setup.admin.post(
        "/admin/budgets",
        json={"scope": "user", "scope_value": user, "period": "total", "limit_usd": "1"},
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == "scope_value"
    key = setup.create_key("crlf")
    answer = setup.http.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "sluice": {"user": user},
        },
    )
    assert answer.status_code == 400, answer.text
    assert "sluice.user" in answer.json()["error"]["message"]
