#!/usr/bin/env python3
"""The analytics queries on a seeded request log of 1M rows in Postgres, with EXPLAIN.

    .venv/bin/python bench/bench_analytics.py [--rows 1000000] [--keep]

Creates the database `sluice_bench_analytics`, migrates it, and seeds it in SQL with
generate_series (no Python in the loop): `--rows` request-log rows over 30 days, 20 prompts
of 3 versions, 5 models, 10% test traffic, 3% errors, and one evaluation for every 4th row.
Then it times each analytics query as the gateway runs it (the services of
gateway/analytics, on the gateway's own engine), 5 runs after a warm-up, and records
`EXPLAIN (ANALYZE, BUFFERS)` of the SQL they send. Results go to bench/results/analytics.md.
Target: each query under 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gateway.analytics.models import ModelAnalytics  # noqa: E402
from gateway.analytics.prompts import PromptAnalytics  # noqa: E402
from gateway.analytics.window import Window  # noqa: E402
from gateway.db.base import utcnow  # noqa: E402
from gateway.db.engine import create_engine, create_sessionmaker  # noqa: E402
from gateway.db.migrate import upgrade  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432"
DB_NAME = "sluice_bench_analytics"
URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}"
TARGET_MS = 200.0

SEED_PARTITIONS = """
SELECT sluice_request_log_partition(d::date)
FROM generate_series(now() - interval '31 days', now(), interval '1 day') AS d;
"""

SEED_PROMPTS = """
INSERT INTO prompts (id, slug, description, tags, created_at, updated_at)
SELECT 'p' || g, 'prompt-' || g, '', '[]', now(), now() FROM generate_series(0, 19) g;
"""

SEED_LOG = """
INSERT INTO request_logs (
    id, request_id, created_at, endpoint, key_id, model_requested, model_served, upstream,
    status_code, error_code, prompt_tokens, completion_tokens, total_tokens, cached_tokens,
    usage_estimated, cost_usd, latency_ms, streamed, client_disconnected, tags, is_test_run,
    prompt_slug, prompt_version)
SELECT
    lpad(to_hex(g), 32, '0'),
    'r' || g,
    now() - (random() * interval '30 days'),
    'chat.completions', 'key1',
    (ARRAY['gpt-4o-mini', 'gpt-4o', 'gpt-4.1-mini', 'o3-mini', 'llama-3-70b'])[1 + g % 5],
    NULL, 'default',
    CASE WHEN g % 33 = 0 THEN 500 ELSE 200 END, NULL,
    100 + g % 400, 20 + g % 200, 120 + g % 600, 0, false,
    (g % 1000) / 100000.0, 50 + random() * 2000, false, false, '{}', g % 10 = 0,
    'prompt-' || (g % 20), 1 + (g / 20) % 3
FROM generate_series(1, %(rows)s) g;
"""

SEED_EVALUATIONS = """
INSERT INTO evaluations (
    id, request_log_id, request_id, context, prompt_slug, prompt_version, evaluator_key,
    evaluator_version, config, weight, score, passed, skipped, details, created_at)
SELECT
    'e' || lpad(to_hex(g), 31, '0'), lpad(to_hex(g), 32, '0'), 'r' || g,
    CASE WHEN g % 10 = 0 THEN 'test_run' ELSE 'production' END,
    'prompt-' || (g % 20), 1 + (g / 20) % 3,
    (ARRAY['exact_match', 'contains', 'json_valid'])[1 + g % 3], '1', '{}', 1.0,
    (g % 7) / 6.0, g % 7 > 2, false, '{}',
    (SELECT created_at FROM request_log_ids i WHERE i.log_id = lpad(to_hex(g), 32, '0'))
FROM generate_series(4, %(rows)s, 4) g;
"""


def seed(rows: int) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')

    async def migrate() -> None:
        engine = create_engine(URL)
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(migrate())
    started = time.monotonic()
    with psycopg.connect(f"{PG}/{DB_NAME}", autocommit=True) as conn:
        # The day partitions a gateway running for the last month would have made.
        conn.execute(SEED_PARTITIONS)
        conn.execute(SEED_PROMPTS)
        conn.execute(SEED_LOG.replace("%(rows)s", str(rows)))  # type: ignore[arg-type]
        conn.execute(SEED_EVALUATIONS.replace("%(rows)s", str(rows)))  # type: ignore[arg-type]
        conn.execute("VACUUM ANALYZE")
    print(f"seeded {rows} rows in {time.monotonic() - started:.0f} s", file=sys.stderr)


async def measure(
    label: str, call: Callable[[], Awaitable[Any]], statements: list[Any]
) -> dict[str, Any]:
    statements.clear()
    await call()  # warm-up, and the SQL it sends
    sql = list(statements)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return {"query": label, "median_ms": statistics.median(times), "max_ms": max(times), "sql": sql}


async def run() -> list[dict[str, Any]]:
    from sqlalchemy import event

    engine = create_engine(URL)
    sessions = create_sessionmaker(engine)
    statements: list[Any] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    prompts = PromptAnalytics(engine, sessions)
    models = ModelAnalytics(engine, sessions)
    now = utcnow()
    week = Window(now - timedelta(days=7), now)
    month = Window(now - timedelta(days=30), now)
    results = [
        await measure(
            "prompt analytics, 7 days", lambda: prompts.report("prompt-4", week), statements
        ),
        await measure(
            "prompt analytics, 30 days", lambda: prompts.report("prompt-4", month), statements
        ),
        await measure("model analytics, 7 days", lambda: models.report(week), statements),
        await measure("model analytics, 30 days", lambda: models.report(month), statements),
    ]
    await engine.dispose()
    with psycopg.connect(f"{PG}/{DB_NAME}", autocommit=True) as conn:
        for result in results:
            plans = []
            for raw, params in result["sql"]:
                if not raw.lstrip().upper().startswith("SELECT"):
                    continue
                statement = psycopg.ClientCursor(conn).mogrify(raw, params)
                rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement).fetchall()  # type: ignore[arg-type]
                plans.append(statement + "\n\n" + "\n".join(row[0] for row in rows))
            result["plans"] = plans
    return results


def report(rows: int, results: list[dict[str, Any]]) -> str:
    lines = [
        "# Analytics queries on a 1M-row request log (Postgres)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()} "
        f"with `.venv/bin/python bench/bench_analytics.py --rows {rows}`: {rows} request-log "
        f"rows over 30 days (20 prompts x 3 versions, 5 models, 10% test traffic, 3% errors) and "
        f"{rows // 4} evaluations. Each figure is the whole service call (every query it sends, "
        "as the admin API runs it), median and worst of 5 after a warm-up.",
        "",
        "| query | median ms | max ms | target |",
        "|---|---|---|---|",
    ]
    for r in results:
        verdict = "met" if r["max_ms"] < TARGET_MS else "MISSED"
        lines.append(
            f"| {r['query']} | {r['median_ms']:.1f} | {r['max_ms']:.1f} | "
            f"< {TARGET_MS:.0f} ms: {verdict} |"
        )
    lines += [
        "",
        "Before the rollups (migration 0006, same data and machine class, 2026-11-21): prompt",
        "analytics 7 days 41 ms, 30 days 190 ms; model analytics 7 days 123 ms, 30 days 622 ms.",
        f"Load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.",
        "",
        "Whole UTC days come from `request_log_daily` and `evaluation_prompt_daily`, whole hours",
        "from `evaluation_model_hourly` (migration 0007, kept by triggers as rows are written);",
        "the partial days (hours) at the window's two edges from the raw rows, the log being",
        "partitioned by day on Postgres. Model scores on the edges are looked up by id through",
        "`request_log_ids`. Latency percentiles (prompt analytics) cannot be added up by day and",
        "are computed from the window's raw rows: one GROUPING SETS scan of",
        "`ix_request_logs_prompt_window` for the per-version and per-day figures, sorted in",
        "memory (`SET LOCAL work_mem = '32MB'` in that read's transaction; the EXPLAIN below ran",
        "without it, hence its external merge). That scan is most of the prompt report's time.",
        "",
        "On paper, 10M rows over 30 days (333k a day): the rollups hold the same number of rows",
        "(their keys do not grow with traffic), so reading them stays a few ms; the raw log edges",
        "of a 30-day window hold one day of rows, 10x today's (model analytics: ~333k rows",
        "aggregated, ~100-150 ms; model scores: two partial hours, ~15k lookups, ~30 ms): model",
        "analytics over 30 days ~150-200 ms. The prompt's percentiles sort all its window's",
        "latencies (~500k for one prompt of 20, 10x today's ~100 ms): ~1 s at 10M. Under 200 ms",
        "there takes a latency histogram in the rollup (approximate percentiles) or an hourly",
        "log rollup for the edges: not done.",
        "",
        "## Plans",
        "",
    ]
    for r in results:
        lines += [f"### {r['query']}", ""]
        for plan in r["plans"]:
            lines += ["```", plan, "```", ""]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse the seeded database")
    args = parser.parse_args()
    if not args.keep:
        seed(args.rows)
    results = asyncio.run(run())
    out = REPO / "bench" / "results" / "analytics.md"
    out.write_text(report(args.rows, results))
    for r in results:
        print(f"{r['query']}: median {r['median_ms']:.1f} ms, max {r['max_ms']:.1f} ms")
    return 0 if all(r["max_ms"] < TARGET_MS for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
