#!/usr/bin/env python3
"""The CPU one request-log flush spends on the event loop before and while it writes.

    .venv/bin/python bench/flush_cost.py [--rows 500] [--repeat 5]

Builds `--rows` log entries like the `chat` case's (its request and nginx's canned answer as
bodies), then times the two pure-CPU parts of a Postgres flush with no database: making the
rows storable (`LogEntry.as_row`) and what the writer does per row inside its COPY (encode the
JSON columns, psycopg's text formatting). Both run on the event loop in one block per batch;
bench/results/tail.md compares them with the stalls the loop actually had.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from psycopg._copy_base import TextFormatter
from psycopg.adapt import Transformer

from gateway.ids import new_id
from gateway.requestlog.entry import LogEntry
from gateway.requestlog.storable import _JSON_COLUMNS

BENCH = Path(__file__).resolve().parent
_encode = msgspec.json.Encoder().encode


def entry(request: dict[str, Any], answer: dict[str, Any]) -> LogEntry:
    rid = new_id()
    return LogEntry(
        id=rid,
        request_id=rid,
        created_at=dt.datetime.now(dt.UTC),
        endpoint="chat.completions",
        key_id=new_id(),
        model_requested="gpt-4o-mini",
        model_served=answer["model"],
        upstream="default",
        status_code=200,
        prompt_tokens=13,
        completion_tokens=9,
        total_tokens=22,
        cost_usd=Decimal("0.00000735"),
        latency_ms=1.2,
        request_body=json.loads(json.dumps(request)),
        response_body=json.loads(json.dumps(answer)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500, help="rows per batch (default 500)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    answer = json.loads((BENCH / "nginx" / "bodies" / "chat.json").read_text())
    request = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hello in five words."}],
        "max_tokens": 16,
    }
    for _ in range(args.repeat):
        batch = [entry(request, answer) for _ in range(args.rows)]
        start = time.perf_counter()
        rows = [e.as_row() for e in batch]
        storable = time.perf_counter()
        formatter = TextFormatter(Transformer())
        positions = [i for i, name in enumerate(rows[0]) if name in _JSON_COLUMNS]
        size = 0
        for row in rows:
            values = list(row.values())
            for i in positions:
                if values[i] is not None:
                    values[i] = _encode(values[i]).decode()
            size += len(formatter.write_row(values))
        done = time.perf_counter()
        print(
            f"{args.rows} rows: as_row {1000 * (storable - start):.1f} ms, "
            f"COPY encoding {1000 * (done - storable):.1f} ms, {size:,} bytes"
        )


if __name__ == "__main__":
    main()
