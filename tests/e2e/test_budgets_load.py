"""Budgets under real concurrency: two gateway processes on one Redis never overspend, and a
Redis that dies mid-burst costs availability (503), never correctness."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway.budgets.plugin import BudgetsPlugin
from gateway.tokens.counting import count_chat_prompt, count_text
from sluice_devtools.fake_upstream import FakeUpstreamThread
from tests.conftest import ADMIN_TOKEN, UPSTREAM_KEY, GatewayFactory
from tests.e2e.budgets_support import (
    GatewayProcess,
    ThrowawayRedis,
    create_budget,
    expected_cost,
    new_key,
    settled_budget,
    usd,
)

N = 20  # requests the budget has room for; 10 * N are sent at once
REPLY_WORDS = 6


def _exact_request(marker: str) -> tuple[list[dict[str, str]], int, Decimal]:
    """Messages, max_tokens and cost of a request whose worst case is exactly its real cost."""
    messages = [{"role": "user", "content": f"{marker} #words={REPLY_WORDS}"}]
    completion = count_text("gpt-4o-mini", " ".join(f"w{i}" for i in range(1, REPLY_WORDS + 1)))
    cost = expected_cost(count_chat_prompt("gpt-4o-mini", messages), completion)
    return messages, completion, cost


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    yield started
    for process in started:
        process.stop()


async def _burst(
    clients: list[openai.AsyncOpenAI], count: int, stream: bool, **request: Any
) -> list[int]:
    async def one(client: openai.AsyncOpenAI) -> int:
        try:
            if stream:
                chunks = await client.chat.completions.create(stream=True, **request)
                async for _ in chunks:
                    pass
            else:
                await client.chat.completions.create(**request)
        except openai.APIStatusError as exc:
            return exc.status_code
        return 200

    return list(await asyncio.gather(*(one(clients[i % len(clients)]) for i in range(count))))


def _log_rows(admin: httpx.Client, count: int, **filters: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while True:
        rows: list[dict[str, Any]] = admin.get(
            "/admin/responses", params={"limit": 500, **filters}
        ).json()["data"]
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_two_gateways_on_one_redis_admit_exactly_what_the_budget_allows(
    database_url: str,
    redis_url: str,
    fake_upstream: FakeUpstreamThread,
    processes: list[GatewayProcess],
    start_gateway: GatewayFactory,
    tmp_path: Path,
    stream: bool,
) -> None:
    env = {
        "SLUICE_DATABASE_URL": database_url,
        "SLUICE_REDIS_URL": redis_url,
        "SLUICE_ADMIN_TOKEN": ADMIN_TOKEN,
        "SLUICE_UPSTREAM_BASE_URL": fake_upstream.base_url,
        "SLUICE_UPSTREAM_API_KEY": UPSTREAM_KEY,
        "SLUICE_LOG_FLUSH_INTERVAL": "0.05",
    }
    # Set up through a gateway in this process, so both replicas start with the budgets loaded.
    setup = start_gateway(database_url, SLUICE_REDIS_URL=redis_url)
    key_id, secret = new_key(setup, "load")
    marker = f"load-{uuid.uuid4().hex[:10]}"
    messages, max_tokens, cost = _exact_request(marker)
    budget = create_budget(
        setup.admin, scope="key", scope_value=key_id, period="daily", limit_usd=str(cost * N)
    )
    # A second budget applies to every request too, with room to spare.
    roomy = create_budget(setup.admin, scope="global", period="monthly", limit_usd=1000)
    first = GatewayProcess(tmp_path / "first.log", **env)
    second = GatewayProcess(tmp_path / "second.log", **env)
    processes += [first, second]
    first.wait_ready()
    second.wait_ready()

    clients = [
        openai.AsyncOpenAI(base_url=f"{p.base_url}/v1", api_key=secret, max_retries=0)
        for p in (first, second)
    ]

    async def run() -> list[int]:
        try:
            return await _burst(
                clients,
                10 * N,
                stream,
                model="gpt-4o-mini",
                messages=messages,
                max_tokens=max_tokens,
            )
        finally:
            for client in clients:
                await client.close()

    statuses = asyncio.run(run())
    logs = "\n".join(p.log_path.read_text()[-2000:] for p in (first, second))
    assert sorted(Counter(statuses).items()) == [(200, N), (402, 9 * N)], logs
    assert len([r for r in fake_upstream.requests if marker in str(r.body)]) == N

    rows = _log_rows(setup.admin, 10 * N, key_id=key_id)
    assert len(rows) == 10 * N
    costs = [usd(row["cost_usd"]) for row in rows if row["status_code"] == 200]
    assert costs == [cost] * N
    assert all(row["cost_usd"] is None for row in rows if row["status_code"] == 402)
    for gateway in (first, second):
        with httpx.Client(
            base_url=gateway.base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as replica:
            settled = settled_budget(replica, budget["id"])
            assert usd(settled["spent_usd"]) == sum(costs) == cost * N
            assert settled["remaining_usd"] == 0
            assert usd(settled_budget(replica, roomy["id"])["spent_usd"]) == cost * N


def test_redis_killed_mid_burst_fails_closed_and_recovers_from_the_log(
    start_gateway: GatewayFactory, database_url: str, fake_upstream: FakeUpstreamThread
) -> None:
    redis_server = ThrowawayRedis().start()
    try:
        _kill_mid_burst(start_gateway, database_url, fake_upstream, redis_server)
    finally:
        redis_server.kill()


def _kill_mid_burst(
    start_gateway: GatewayFactory,
    database_url: str,
    fake_upstream: FakeUpstreamThread,
    redis_server: ThrowawayRedis,
) -> None:
    gateway = start_gateway(database_url, SLUICE_REDIS_URL=redis_server.url)
    budget = create_budget(
        gateway.admin, scope="user", scope_value="burst", period="daily", limit_usd=1
    )
    secret = gateway.create_key()
    marker = f"burst-{uuid.uuid4().hex[:10]}"
    headers = {"X-Sluice-User": "burst"}
    slow = [{"role": "user", "content": f"{marker} #words=8 #delay=400"}]
    quick = [{"role": "user", "content": f"{marker} #words=3"}]

    async def scenario() -> tuple[list[int], list[int]]:
        client = openai.AsyncOpenAI(
            base_url=f"{gateway.base_url}/v1", api_key=secret, max_retries=0
        )
        async with client:
            burst = asyncio.ensure_future(
                _burst([client], 12, False, model="gpt-4o-mini", messages=slow,
                       max_tokens=20, extra_headers=headers)
            )  # fmt: skip
            deadline = time.monotonic() + 10
            while len([r for r in fake_upstream.requests if marker in str(r.body)]) < 12:
                assert time.monotonic() < deadline, "the burst never reached the upstream"
                await asyncio.sleep(0.01)
            redis_server.kill()  # every request of the burst holds a reservation in flight
            during = await _burst([client], 5, False, model="gpt-4o-mini", messages=quick,
                                  max_tokens=20, extra_headers=headers)  # fmt: skip
            return await burst, during

    in_flight, during = asyncio.run(scenario())
    assert in_flight == [200] * 12  # already forwarded: served, their settlements queued
    assert during == [503] * 5
    assert gateway.http.get("/healthz").status_code == 200
    refused = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": quick},
        headers={"Authorization": f"Bearer {secret}", **headers},
    )
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "budget_store_unavailable"
    assert gateway.admin.get(f"/admin/budgets/{budget['id']}").status_code == 503

    redis_server.start()  # empty: every counter is gone
    client = gateway.openai(secret)
    deadline = time.monotonic() + 10
    while True:  # the gateway reconnects by itself
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=quick, max_tokens=20, extra_headers=headers
        )  # type: ignore[call-overload]
        if raw.status_code == 200:
            break
        assert raw.status_code == 503
        assert time.monotonic() < deadline, "the gateway did not recover"
        time.sleep(0.05)
    rows = gateway.wait_for_rows(12 + 5 + 1 + 1, user="burst", timeout=20)
    logged = sum(usd(row["cost_usd"]) for row in rows if row["cost_usd"] is not None)
    assert len([row for row in rows if row["status_code"] == 200]) == 13
    settled = settled_budget(gateway.admin, budget["id"])
    assert usd(settled["spent_usd"]) == logged
    pending = gateway.plugin(BudgetsPlugin).service.value.retries
    deadline = time.monotonic() + 10
    while len(pending):
        assert time.monotonic() < deadline, "queued settlements were never retried"
        time.sleep(0.02)
    assert usd(settled_budget(gateway.admin, budget["id"])["spent_usd"]) == logged
    metrics = gateway.http.get("/metrics").text
    assert 'sluice_budget_checks_total{outcome="unavailable"} 6.0' in metrics


def test_fail_open_serves_and_counts_while_redis_is_down(
    start_gateway: GatewayFactory, sqlite_url: str
) -> None:
    redis_server = ThrowawayRedis().start()
    try:
        gateway = start_gateway(
            sqlite_url, SLUICE_REDIS_URL=redis_server.url, SLUICE_BUDGET_FAIL_OPEN="true"
        )
        create_budget(gateway.admin, scope="global", period="daily", limit_usd=1)
        client = gateway.openai()
        redis_server.kill()
        for _ in range(3):
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "#words=2"}]
            )
            assert raw.status_code == 200
            assert "x-sluice-cost-usd" in raw.headers
            assert "x-sluice-budget-remaining-usd" not in raw.headers
        metrics = gateway.http.get("/metrics").text
        assert "sluice_budget_fail_open_total 3.0" in metrics
    finally:
        redis_server.kill()
