"""Analytics checked against a seeded request log and evaluations, on SQLite and Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert

from gateway.db.engine import create_engine
from gateway.db.models import Evaluation, RequestLog
from gateway.ids import new_id
from tests.conftest import RunningGateway
from tests.e2e.prompts_support import make_prompt, system

DAY1 = datetime(2026, 3, 1, 12, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
WINDOW = {"since": "2026-02-28T00:00:00Z", "until": "2026-03-05T00:00:00Z"}


def _log(version: int, model: str, at: datetime, latency: float, **extra: Any) -> dict[str, Any]:
    row = {
        "id": new_id(),
        "request_id": new_id(),
        "created_at": at,
        "endpoint": "chat.completions",
        "model_requested": model,
        "status_code": 200,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "cost_usd": Decimal("0.001"),
        "latency_ms": latency,
        "prompt_slug": "qa",
        "prompt_version": version,
        "is_test_run": False,
        "tags": {},
        "usage_estimated": False,
        "streamed": False,
        "client_disconnected": False,
    }
    row.update(extra)
    return row


def _score(log: dict[str, Any], score: float, context: str = "production") -> dict[str, Any]:
    return {
        "id": new_id(),
        "request_log_id": log["id"],
        "request_id": log["request_id"],
        "context": context,
        "prompt_slug": "qa",
        "prompt_version": log["prompt_version"],
        "evaluator_key": "exact_match",
        "evaluator_version": "1",
        "config": {},
        "weight": 1.0,
        "score": score,
        "passed": score >= 1.0,
        "skipped": False,
        "details": {},
        "created_at": log["created_at"],
    }


def _seed(url: str) -> None:
    prod = [_log(1, "gpt-4o-mini", DAY1, ms) for ms in (100, 200, 300, 400)]
    prod[3].update(status_code=500, cost_usd=None, prompt_tokens=None, completion_tokens=None)
    test = [_log(1, "gpt-4o-mini", DAY1, ms, is_test_run=True) for ms in (50, 150)]
    v2 = [_log(2, "gpt-4o", DAY2, ms, cost_usd=Decimal("0.01")) for ms in (1000, 2000)]
    scores = [_score(prod[0], 1), _score(prod[1], 0), _score(prod[2], 1)]
    scores += [_score(test[0], 0, "test_run"), _score(v2[0], 1), _score(v2[1], 1)]

    async def write() -> None:
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.execute(insert(RequestLog), prod + test + v2)
            await connection.execute(insert(Evaluation), scores)
        await engine.dispose()

    asyncio.run(write())


def test_prompt_and_model_analytics_match_the_seeded_log(
    gateway: RunningGateway, database_url: str
) -> None:
    make_prompt(gateway, "qa", system("A"), system("B"))
    _seed(database_url)
    report = gateway.admin.get("/admin/analytics/prompts/qa", params=WINDOW)
    assert report.status_code == 200, report.text
    versions = {(v["version"], v["traffic"]): v for v in report.json()["versions"]}
    v1 = versions[(1, "production")]
    assert (v1["requests"], v1["errors"], v1["error_rate"]) == (4, 1, 0.25)
    assert (v1["prompt_tokens"], v1["completion_tokens"]) == (30, 15)
    assert v1["cost_usd"] == pytest.approx(0.003)
    assert v1["latency_p50_ms"] == pytest.approx(250.0)
    assert v1["latency_p95_ms"] == pytest.approx(385.0)  # 300 + 0.85 * 100
    exact = v1["evaluators"]["exact_match"]
    assert exact["evaluations"] == 3 and exact["mean_score"] == pytest.approx(2 / 3)
    assert exact["pass_rate"] == pytest.approx(2 / 3)
    t1 = versions[(1, "test")]
    assert (t1["requests"], t1["latency_p50_ms"]) == (2, pytest.approx(100.0))
    assert t1["evaluators"]["exact_match"]["mean_score"] == 0.0
    v2 = versions[(2, "production")]
    assert (v2["requests"], v2["latency_p95_ms"]) == (2, pytest.approx(1950.0))
    days = {(d["day"], d["version"], d["traffic"]) for d in report.json()["days"]}
    assert days == {
        ("2026-03-01", 1, "production"),
        ("2026-03-01", 1, "test"),
        ("2026-03-02", 2, "production"),
    }

    models = gateway.admin.get("/admin/analytics/models", params=WINDOW).json()
    by_model = {m["model"]: m for m in models["models"]}
    mini, big = by_model["gpt-4o-mini"], by_model["gpt-4o"]
    assert (mini["requests"], mini["success_rate"]) == (6, pytest.approx(5 / 6))
    assert mini["mean_latency_ms"] == pytest.approx(1200 / 6)
    assert mini["cost_per_request_usd"] == pytest.approx(0.001)
    assert mini["mean_score"] == pytest.approx(2 / 4)  # 1, 0, 1 and the test run's 0
    assert big["mean_score"] == 1.0 and big["cost_per_request_usd"] == pytest.approx(0.01)
    assert models["most_accurate"]["model"] == "gpt-4o"
    assert models["fastest"]["model"] == "gpt-4o-mini"
    assert models["best_value"]["model"] == "gpt-4o-mini"  # 0.5 / $0.001 beats 1.0 / $0.01
    assert models["best_value"]["figures"]["score_per_usd"] == pytest.approx(500.0)

    missing = gateway.admin.get("/admin/analytics/prompts/nope")
    assert missing.status_code == 404
    backwards = gateway.admin.get(
        "/admin/analytics/models", params={"since": WINDOW["until"], "until": WINDOW["since"]}
    )
    assert backwards.status_code == 400
    assert gateway.admin.get("/admin/analytics/models", params={"days": 0}).status_code == 400
