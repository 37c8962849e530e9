"""Analytics over the daily rollup answer what the raw rows say, on random data and windows.

The expected figures are computed here in Python straight from the rows written, so the
check covers the rollup triggers, the whole-day/edge split and the merging of the two.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert

from gateway.analytics.models import ModelAnalytics
from gateway.analytics.prompts import PromptAnalytics, percentile
from gateway.analytics.window import Window
from gateway.db.engine import create_engine, create_sessionmaker
from gateway.db.models import Evaluation, Prompt
from gateway.ids import new_id
from gateway.requestlog.buffer import RequestLogWriter
from gateway.requestlog.entry import LogEntry

START = datetime(2026, 4, 1, tzinfo=UTC)
MODELS = ["m-small", "m-large", "m-odd", None]


def _rows(rng: random.Random) -> tuple[list[LogEntry], list[dict[str, Any]]]:
    logs: list[LogEntry] = []
    evaluations: list[dict[str, Any]] = []
    for _ in range(600):
        slug = rng.choice(["qa", "qa", "other", None])
        entry = LogEntry(
            id=new_id(),
            request_id=new_id(),
            created_at=START + timedelta(seconds=rng.uniform(0, 6 * 86400)),
            endpoint="chat.completions",
            model_requested=rng.choice(MODELS),
            status_code=rng.choice([200, 200, 200, 429, 500]),
            prompt_tokens=rng.choice([None, rng.randint(1, 900)]),
            completion_tokens=rng.choice([None, rng.randint(1, 300)]),
            cost_usd=rng.choice([None, Decimal(rng.randint(1, 10_000)) / Decimal(1_000_000)]),
            latency_ms=round(rng.uniform(5, 3000), 3),
            is_test_run=rng.random() < 0.2,
            prompt_slug=slug,
            prompt_version=rng.randint(1, 3) if slug else None,
        )
        logs.append(entry)
        if rng.random() < 0.5:
            evaluations.append(
                {
                    "id": new_id(),
                    "request_log_id": entry.id,
                    "request_id": entry.request_id,
                    "context": rng.choice(["production", "test_run", "manual"]),
                    "prompt_slug": slug,
                    "prompt_version": entry.prompt_version,
                    "evaluator_key": rng.choice(["exact_match", "contains"]),
                    "evaluator_version": "1",
                    "config": {},
                    "weight": 1.0,
                    "score": rng.choice([None, rng.random()]),
                    "passed": rng.choice([None, True, False]),
                    "skipped": False,
                    "details": {},
                    # Often the next day: the two days of an evaluation differ.
                    "created_at": entry.created_at + timedelta(hours=rng.uniform(0, 30)),
                }
            )
    return logs, evaluations


def _windows(rng: random.Random) -> list[Window]:
    windows = [
        Window(START, START + timedelta(days=6)),  # whole days only
        Window(START + timedelta(hours=3), START + timedelta(hours=20)),  # inside one day
        Window(START - timedelta(days=1), START + timedelta(days=9)),  # past the data
    ]
    for _ in range(5):
        since = START + timedelta(seconds=rng.uniform(-86400, 5 * 86400))
        windows.append(Window(since, since + timedelta(seconds=rng.uniform(3600, 5 * 86400))))
    return windows


def _inside(moment: datetime, window: Window) -> bool:
    return window.since <= moment < window.until


def _expected_models(
    logs: list[LogEntry], evaluations: list[dict[str, Any]], window: Window
) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[LogEntry]] = defaultdict(list)
    for entry in logs:
        if entry.model_requested is not None and _inside(entry.created_at, window):
            groups[entry.model_requested].append(entry)
    by_id = {entry.id: entry for entry in logs}
    scores: dict[str, list[float]] = defaultdict(list)
    for evaluation in evaluations:
        entry = by_id[evaluation["request_log_id"]]
        if (
            evaluation["context"] != "manual"
            and evaluation["score"] is not None
            and entry.model_requested is not None
            and _inside(evaluation["created_at"], window)
            and _inside(entry.created_at, window)
        ):
            scores[entry.model_requested].append(evaluation["score"])
    expected = {}
    for model, rows in groups.items():
        costs = [float(r.cost_usd) for r in rows if r.cost_usd is not None]
        expected[model] = {
            "requests": len(rows),
            "success_rate": sum(r.status_code == 200 for r in rows) / len(rows),
            "mean_latency_ms": sum(r.latency_ms for r in rows) / len(rows),
            "cost_per_request_usd": sum(costs) / len(costs) if costs else None,
            "total_cost_usd": sum(costs),
            "evaluations": len(scores[model]),
            "mean_score": sum(scores[model]) / len(scores[model]) if scores[model] else None,
        }
    return expected


def _expected_prompt(logs: list[LogEntry], window: Window) -> dict[tuple[Any, ...], Any]:
    groups: dict[tuple[Any, ...], list[LogEntry]] = defaultdict(list)
    for entry in logs:
        if entry.prompt_slug == "qa" and _inside(entry.created_at, window):
            traffic = "test" if entry.is_test_run else "production"
            groups[(entry.prompt_version, traffic)].append(entry)
            day = entry.created_at.date().isoformat()
            groups[(entry.prompt_version, traffic, day)].append(entry)
    return {
        key: {
            "requests": len(rows),
            "errors": sum(r.status_code >= 400 for r in rows),
            "prompt_tokens": sum(r.prompt_tokens or 0 for r in rows),
            "completion_tokens": sum(r.completion_tokens or 0 for r in rows),
            "cost_usd": sum(float(r.cost_usd or 0) for r in rows),
            "latency_p50_ms": percentile([r.latency_ms for r in rows], 0.5),
            "latency_p95_ms": percentile([r.latency_ms for r in rows], 0.95),
        }
        for key, rows in groups.items()
    }


def _expected_scores(
    evaluations: list[dict[str, Any]], window: Window
) -> dict[tuple[Any, ...], dict[str, tuple[int, float | None, float]]]:
    """Per (version, traffic, day of the evaluation) and evaluator: count, mean, pass rate."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for e in evaluations:
        qa = e["prompt_slug"] == "qa" and e["context"] != "manual"
        if qa and _inside(e["created_at"], window):
            traffic = "test" if e["context"] == "test_run" else "production"
            day = e["created_at"].date().isoformat()
            groups[(e["prompt_version"], traffic, day, e["evaluator_key"])].append(e)
    expected: dict[tuple[Any, ...], dict[str, tuple[int, float | None, float]]] = defaultdict(dict)
    for (version, traffic, day, key), rows in groups.items():
        scores = [e["score"] for e in rows if e["score"] is not None]
        expected[(version, traffic, day)][key] = (
            len(scores),
            _approx(sum(scores) / len(scores)) if scores else None,
            _approx(sum(e["passed"] is True for e in rows) / len(rows)),
        )
    return expected


def _approx(value: Any) -> Any:
    return pytest.approx(value, rel=1e-9, abs=1e-12) if isinstance(value, float) else value


async def test_rollup_answers_equal_raw_answers_on_random_data(database_url: str) -> None:
    rng = random.Random(20261202)
    logs, evaluations = _rows(rng)
    engine = create_engine(database_url)
    try:
        writer = RequestLogWriter(engine)
        for start in range(0, len(logs), 97):  # batches, as the buffer writes them
            await writer.write([entry.as_row() for entry in logs[start : start + 97]])
        async with engine.begin() as connection:
            await connection.execute(
                insert(Prompt),
                [{"id": new_id(), "slug": "qa", "created_at": START, "updated_at": START}],
            )
            await connection.execute(insert(Evaluation), evaluations)
        sessions = create_sessionmaker(engine)
        models, prompts = ModelAnalytics(engine, sessions), PromptAnalytics(engine, sessions)
        for window in _windows(rng):
            report = await models.report(window)
            got = {
                m.model: {key: getattr(m, key) for key in ("requests", "success_rate")}
                | {
                    key: getattr(m, key)
                    for key in (
                        "mean_latency_ms",
                        "cost_per_request_usd",
                        "total_cost_usd",
                        "evaluations",
                        "mean_score",
                    )
                }
                for m in report.models
            }
            expected = _expected_models(logs, evaluations, window)
            assert got.keys() == expected.keys(), window
            for model, figures in expected.items():
                assert got[model] == {k: _approx(v) for k, v in figures.items()}, (window, model)

            prompt = await prompts.report("qa", window)
            found = {(f.version, f.traffic): f for f in prompt.versions}
            found |= {(f.version, f.traffic, f.day): f for f in prompt.days}
            wanted = _expected_prompt(logs, window)
            assert found.keys() == wanted.keys(), window
            for key, figures in wanted.items():
                actual = {name: getattr(found[key], name) for name in figures}
                assert actual == {k: _approx(v) for k, v in figures.items()}, (window, key)
            scores = _expected_scores(evaluations, window)
            for f in prompt.days:
                got_scores = {
                    key: (e.evaluations, e.mean_score, e.pass_rate)
                    for key, e in f.evaluators.items()
                }
                assert got_scores == scores.get((f.version, f.traffic, f.day), {}), (window, f)
    finally:
        await engine.dispose()
