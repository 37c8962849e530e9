"""Keys across replicas, the secret canary, health, readiness and metrics."""

from __future__ import annotations

import logging
import time

import openai
import pytest

from tests.conftest import UPSTREAM_KEY, GatewayFactory, RunningGateway


def test_key_lifecycle_secret_shown_once(gateway: RunningGateway) -> None:
    created = gateway.admin.post("/admin/keys", json={"name": "svc"}).json()
    assert created["key"].startswith("sk-sluice-")
    listed = gateway.admin.get("/admin/keys").json()
    assert listed["next_cursor"] is None
    assert [k["id"] for k in listed["data"]] == [created["id"]]
    assert "key" not in listed["data"][0]
    assert created["key"] not in str(listed)
    one = gateway.admin.get(f"/admin/keys/{created['id']}").json()
    assert one["prefix"] == created["key"][:14]
    assert gateway.admin.delete("/admin/keys/nope").status_code == 404


def test_keys_are_paged(sqlite_gateway: RunningGateway) -> None:
    ids = [
        sqlite_gateway.admin.post("/admin/keys", json={"name": f"k{i}"}).json()["id"]
        for i in range(5)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = sqlite_gateway.admin.get("/admin/keys", params=params).json()
        seen += [k["id"] for k in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


@pytest.mark.redis
def test_revoked_key_stops_working_within_a_second_on_every_replica(
    start_gateway: GatewayFactory, database_url: str, redis_url: str
) -> None:
    first = start_gateway(database_url, SLUICE_REDIS_URL=redis_url)
    second = start_gateway(database_url, SLUICE_REDIS_URL=redis_url)
    created = first.admin.post("/admin/keys", json={"name": "shared"}).json()
    clients = [first.openai(created["key"]), second.openai(created["key"])]
    for client in clients:  # both replicas now hold the key in their caches
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert first.admin.delete(f"/admin/keys/{created['id']}").status_code == 200
    revoked_at = time.monotonic()
    for client in clients:
        while True:
            try:
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
                )
            except openai.AuthenticationError as exc:
                message = exc.message
                break
            assert time.monotonic() - revoked_at < 1.0, "revocation took longer than a second"
            time.sleep(0.02)
        assert "revoked" in message


def test_no_secret_reaches_logs_metrics_or_errors(
    sqlite_gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = sqlite_gateway.create_key()
    client = sqlite_gateway.openai(key)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}])
    for fault in ("#fault=500", "#fault=reset", "#fault=malformed"):
        with pytest.raises(openai.APIError) as info:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": fault}]
            )
        assert UPSTREAM_KEY not in str(info.value.body)
        assert key not in str(info.value.body)
    with pytest.raises(openai.AuthenticationError) as denied:
        sqlite_gateway.openai(key + "x").models.list()
    assert key not in str(denied.value.body)
    # A model name is client-chosen and ends up in a metric label: it must not echo secrets.
    sqlite_gateway.wait_for_rows(4)
    metrics = sqlite_gateway.http.get("/metrics").text
    responses = sqlite_gateway.admin.get("/admin/responses").text
    for text in (metrics, responses, caplog.text):
        assert UPSTREAM_KEY not in text
        assert key not in text


def test_health_readiness_metrics_and_schema(sqlite_gateway: RunningGateway) -> None:
    assert sqlite_gateway.http.get("/healthz").json() == {"status": "ok"}
    ready = sqlite_gateway.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "request_log": "ok"}
    client = sqlite_gateway.openai()
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}])
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "#fault=503"}]
        )
    sqlite_gateway.wait_for_rows(2)
    metrics = sqlite_gateway.http.get("/metrics").text
    assert (
        'sluice_requests_total{model="gpt-4o-mini",route="chat.completions",status="200"} 1.0'
        in metrics
    )
    assert 'sluice_upstream_errors_total{kind="503",upstream="default"} 1.0' in metrics
    assert "sluice_request_duration_seconds_bucket" in metrics
    assert "sluice_log_buffer_rows 0.0" in metrics
    assert "sluice_log_rows_dropped_total 0.0" in metrics
    schema = sqlite_gateway.http.get("/schema/openapi.json").json()
    assert "/v1/chat/completions" in schema["paths"]
    assert "/admin/keys" in schema["paths"]


@pytest.mark.redis
def test_readyz_reports_unreachable_redis(start_gateway: GatewayFactory, sqlite_url: str) -> None:
    gateway = start_gateway(sqlite_url, SLUICE_REDIS_URL="redis://127.0.0.1:1/0")
    ready = gateway.http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"].startswith("unavailable")
