"""How many cheap evaluations per second one evaluation worker scores (issue 5's target: 2,000).

Builds the worker exactly as `sluice worker` does (the full app's services, Redis Streams,
Postgres), logs N production responses of a version that has three queued cheap evaluators
(contains, length, regex), enqueues one job per response, then runs one worker until every
evaluation is written and reports evaluations per second. Uses a scratch database and Redis
db 14; both are emptied first.

    .venv/bin/python bench/eval_worker.py [--responses 5000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import msgspec
import psycopg
from sqlalchemy import func, insert, select

from gateway.app import create_app
from gateway.core import CorePlugin
from gateway.db.base import utcnow
from gateway.db.engine import create_engine
from gateway.db.migrate import upgrade
from gateway.db.models import Evaluation, RequestLog
from gateway.evaluations.config_spec import EvaluatorConfigSpec
from gateway.evaluations.plugin import EvaluationsPlugin
from gateway.evaluations.records import Job
from gateway.ids import new_id
from gateway.prompts.plugin import PromptsPlugin
from gateway.prompts.spec import PromptSpec, VersionSpec
from gateway.settings import load_settings

PG_ADMIN = os.environ.get("SLUICE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("SLUICE_BENCH_REDIS", "redis://127.0.0.1:6379/14")
EVALUATORS = [
    {"evaluator_key": "contains", "config": {"value": "hello", "case_sensitive": False}},
    {"evaluator_key": "length", "config": {"min": 1, "max": 500}},
    {"evaluator_key": "regex", "config": {"pattern": "^[A-Z]"}},
]


async def run(responses: int, concurrency: int, database_url: str) -> float:
    engine = create_engine(database_url)
    await upgrade(engine)
    await engine.dispose()
    settings = load_settings(
        {
            "SLUICE_DATABASE_URL": database_url,
            "SLUICE_REDIS_URL": REDIS,
            "SLUICE_UPSTREAM_API_KEY": "unused",
            "SLUICE_EVAL_CONCURRENCY": str(concurrency),
        }
    )
    app = create_app(settings)
    async with app.lifespan():
        runtime = app.plugins.get(CorePlugin).core.value
        assert runtime.redis is not None
        await runtime.redis.flushdb()
        services = app.plugins.get(EvaluationsPlugin).services.value
        prompts = app.plugins.get(PromptsPlugin).services.value.prompts
        await prompts.create_prompt(PromptSpec(slug="bench-evals"))
        version = await prompts.create_version(
            "bench-evals",
            msgspec.convert(
                {"messages": [{"role": "system", "content": "Be terse."}]}, VersionSpec
            ),
        )
        for spec in EVALUATORS:
            await services.configs.create_for_version(
                "bench-evals", version.version, EvaluatorConfigSpec(**spec, run_mode="queued")
            )
        ids = [new_id() for _ in range(responses)]
        now = utcnow()
        async with runtime.engine.begin() as connection:
            for start in range(0, responses, 1000):
                await connection.execute(
                    insert(RequestLog),
                    [
                        {
                            "id": log_id,
                            "request_id": log_id,
                            "created_at": now,
                            "endpoint": "chat.completions",
                            "status_code": 200,
                            "latency_ms": 100.0,
                            "tags": {},
                            "prompt_slug": "bench-evals",
                            "prompt_version": version.version,
                            "prompt_version_id": version.id,
                            "variables": {},
                            "request_body": {
                                "model": "gpt-4o-mini",
                                "messages": [{"role": "user", "content": "Say hello."}],
                            },
                            "response_body": {
                                "choices": [{"message": {"content": "Hello there, friend!"}}]
                            },
                        }
                        for log_id in ids[start : start + 1000]
                    ],
                )
        await services.queue.enqueue([Job(request_log_id=log_id) for log_id in ids])
        worker = services.worker("bench")
        started = time.perf_counter()
        task = asyncio.create_task(worker.run())
        expected = responses * len(EVALUATORS)
        while True:
            async with runtime.sessions() as session:
                done = await session.scalar(select(func.count()).select_from(Evaluation))
            if done >= expected:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        worker.stop()
        await task
    return expected / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--responses", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    name = f"sluice_evalbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    try:
        rate = asyncio.run(run(args.responses, args.concurrency, url))
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(
        f"evaluation worker: {rate:,.0f} cheap evaluations/s "
        f"({args.responses} responses x {len(EVALUATORS)} evaluators, "
        f"concurrency {args.concurrency}, Postgres + Redis Streams)"
    )


if __name__ == "__main__":
    main()
