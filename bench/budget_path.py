#!/usr/bin/env python3
"""What budgets add to a request, measured in-process: the budget stage alone, no HTTP.

    .venv/bin/python bench/budget_path.py [--requests 3000] [--redis-url redis://127.0.0.1:6379/14]

For each ledger (in-process; Redis through `resp.py` and through redis-py, when reachable) it
runs the budget stage exactly as the proxy calls it, one request at a time: `reserve()`
(budgets that apply, exact prompt tokens, the atomic hold on two budgets: global monthly and
per-key daily) then `settle()` (release and add the real cost).
It times the pair per request and reports p50/p99, for the benchmark's own
small prompt and for a 2,000-token prompt, next to a baseline where no budget applies (pricing
only). It also times token counting alone for the 2,000-token prompt. The stage's database is a
fresh SQLite file; the Redis database given is flushed. Results go to
bench/results/budget_path.md (and .json), and the end-to-end `two-budgets` case of
`bench/run.py --cases chat,two-budgets` measures the same path through HTTP.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvloop
from prometheus_client import CollectorRegistry

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gateway.budgets.alerts import AlertSink  # noqa: E402
from gateway.budgets.ledger import BudgetLedger  # noqa: E402
from gateway.budgets.local_ledger import LocalLedger  # noqa: E402
from gateway.budgets.metrics import BudgetMetrics  # noqa: E402
from gateway.budgets.pricing_service import PricingService  # noqa: E402
from gateway.budgets.redis_ledger import RedisLedger  # noqa: E402
from gateway.budgets.redis_py_ledger import RedisPyConnection, RedisPyLedger  # noqa: E402
from gateway.budgets.registry import BudgetRegistry, NewBudget  # noqa: E402
from gateway.budgets.resp import RespConnection  # noqa: E402
from gateway.budgets.service import BudgetService  # noqa: E402
from gateway.budgets.spend import SpendQuery  # noqa: E402
from gateway.changes import LocalChangeFeed  # noqa: E402
from gateway.db.engine import create_engine, create_sessionmaker  # noqa: E402
from gateway.db.migrate import upgrade  # noqa: E402
from gateway.ids import new_id  # noqa: E402
from gateway.keys.service import KeyInfo, KeyService  # noqa: E402
from gateway.proxy.context import CallContext  # noqa: E402
from gateway.proxy.stages import Usage  # noqa: E402
from gateway.settings import BudgetSettings  # noqa: E402
from gateway.tokens.counting import count_chat_prompt  # noqa: E402
from gateway.tokens.encodings import get_encoding  # noqa: E402
from gateway.upstream.routing import Route, Upstream  # noqa: E402

ROUTE = Route(Upstream("default", "http://127.0.0.1:18081/v1", None), "gpt-4o-mini")
SMALL = [{"role": "user", "content": "Say hello in five words."}]
PARAGRAPH = (
    "Sluice sits between applications and their model providers. It forwards every request, "
    "counts its tokens exactly, reserves its worst-case cost on each budget that applies, and "
    "settles the real cost from the provider's usage once the answer is back. "
)


def long_prompt(tokens: int) -> list[dict[str, str]]:
    """A system and a user message of about `tokens` prompt tokens in all."""
    text = ""
    while count_chat_prompt("gpt-4o-mini", [{"role": "user", "content": text}]) < tokens:
        text += PARAGRAPH
    return [
        {"role": "system", "content": "You are a careful assistant. Answer in one line."},
        {"role": "user", "content": text},
    ]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": statistics.median(ordered) * 1e6,
        "p99_us": ordered[int(len(ordered) * 0.99) - 1] * 1e6,
        "mean_us": statistics.fmean(ordered) * 1e6,
    }


async def build(db_url: str, ledger: BudgetLedger) -> tuple[BudgetService, str, Any]:
    engine = create_engine(db_url)
    sessions = create_sessionmaker(engine)
    changes = LocalChangeFeed()
    metrics = BudgetMetrics(CollectorRegistry())
    pricing = PricingService(sessions, changes, configured={}, use_fallback=False)
    await pricing.load()
    registry = BudgetRegistry(sessions, changes)
    key = (await KeyService(sessions, changes).create("bench")).info.id

    async def flush() -> bool:
        return True

    service = BudgetService(
        registry=registry,
        pricing=pricing,
        ledger=ledger,
        spend=SpendQuery(sessions),
        alerts=AlertSink(engine, sessions, metrics),
        metrics=metrics,
        settings=BudgetSettings(),
        flush_log=flush,
    )
    return service, key, engine


async def time_stage(
    service: BudgetService, key_id: str, messages: list[dict[str, str]], requests: int
) -> dict[str, float]:
    info = KeyInfo(key_id, "bench", "sk-sluice-x", datetime.now(UTC))
    usage = Usage(count_chat_prompt("gpt-4o-mini", messages), 12)
    samples = []
    for i in range(requests + 200):
        call = CallContext(request_id=new_id(), started=0.0, created_at=datetime.now(UTC))
        call.key = info
        body = {"model": "gpt-4o-mini", "messages": messages, "max_tokens": 16}
        started = time.perf_counter()
        reservation = await service.reserve(call, ROUTE, body, "chat.completions")
        await service.settle(reservation, ROUTE, usage)
        if i >= 200:  # warm-up: caches, script loading, connection pool
            samples.append(time.perf_counter() - started)
    return percentiles(samples)


def time_counting(messages: list[dict[str, str]], runs: int, *, fresh: bool) -> dict[str, float]:
    """`fresh`: every run's last message is new (a count nobody remembers); otherwise the same
    prompt again (its texts' counts are remembered, as for a resent conversation)."""
    samples = []
    for i in range(runs):
        if fresh:
            last = messages[-1]
            sent = [*messages[:-1], {**last, "content": f"{last['content']} {i}"}]
        else:
            sent = messages
        started = time.perf_counter()
        count_chat_prompt("gpt-4o-mini", sent)
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    get_encoding("o200k_base")
    big = long_prompt(2000)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "python": platform.python_version(),
        "requests": args.requests,
        "prompt_tokens": {
            "small": count_chat_prompt("gpt-4o-mini", SMALL),
            "2k": count_chat_prompt("gpt-4o-mini", big),
        },
        "token_counting_2k": time_counting(big, args.requests, fresh=True),
        "token_counting_2k_again": time_counting(big, args.requests, fresh=False),
        "ledgers": {},
    }
    ledgers: list[tuple[str, Any]] = [("in-process", LocalLedger())]
    connection = RespConnection(args.redis_url)
    try:
        await connection.call("FLUSHDB")
        ledgers.append(("redis", RedisLedger(connection)))
        ledgers.append(("redis-py", RedisPyLedger(RedisPyConnection(args.redis_url))))
    except OSError as exc:
        results["redis_skipped"] = f"{type(exc).__name__}: {exc}"
    with tempfile.TemporaryDirectory() as tmp:
        for name, ledger in ledgers:
            url = f"sqlite+aiosqlite:///{tmp}/{name}.db"
            engine = create_engine(url)
            await upgrade(engine)
            await engine.dispose()
            service, key, engine = await build(url, ledger)
            figures = {"no budget applies (pricing only)": await time_stage(
                service, key, SMALL, args.requests
            )}  # fmt: skip
            for scope, value, period in (("global", None, "monthly"), ("key", key, "daily")):
                spec = NewBudget(scope, value, period, Decimal(1_000_000))
                await service.registry.create(spec)
            figures["two budgets, small prompt"] = await time_stage(
                service, key, SMALL, args.requests
            )
            figures["two budgets, 2k-token prompt"] = await time_stage(
                service, key, big, args.requests
            )
            results["ledgers"][name] = figures
            await service.close()
            await engine.dispose()
    await connection.close()
    return results


def render(results: dict[str, Any]) -> str:
    lines = [
        "# The budget path, in-process",
        "",
        f"Generated by `bench/budget_path.py` on {results['date']} (Python {results['python']}),",
        f"{results['requests']} sequential requests per row after 200 of warm-up. Each figure is",
        "the time of the budget stage's `reserve()` + `settle()` for one request, as the proxy",
        "calls them; two budgets (global monthly, per-key daily) apply unless said otherwise.",
        "",
        "| ledger | case | p50 µs | p99 µs | mean µs |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for ledger, cases in results["ledgers"].items():
        for case, figures in cases.items():
            lines.append(
                f"| {ledger} | {case} | {figures['p50_us']:.0f} | {figures['p99_us']:.0f} "
                f"| {figures['mean_us']:.0f} |"
            )
    counting = results["token_counting_2k"]
    again = results["token_counting_2k_again"]
    tokens = results["prompt_tokens"]
    lines += [
        "",
        f"Token counting alone, a {tokens['2k']}-token prompt (`count_chat_prompt`, o200k_base): "
        f"p50 {counting['p50_us']:.0f} µs, p99 {counting['p99_us']:.0f} µs with a new last "
        f"message every time; the same prompt again (its counts remembered): p50 "
        f"{again['p50_us']:.1f} µs, p99 {again['p99_us']:.1f} µs. "
        f"The small prompt is {tokens['small']} tokens.",
    ]
    if "redis_skipped" in results:
        lines += ["", f"Redis not measured: {results['redis_skipped']}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "budget_path.md"
    )
    args = parser.parse_args()
    # uvloop, as `sluice serve` runs
    results = uvloop.run(measure(args))
    markdown = render(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown)
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
