"""Where request-log rows go that cannot be written: a table, or a JSONL file when it can't.

A row the database refuses for itself (a value no column can hold) is stored here with the
error, so that it never blocks the rows behind it. When the table is not writable either (the
database is down at shutdown), the rows are appended to a JSONL file; only if that fails too
are they lost, and then loudly.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.base import utcnow
from gateway.db.models import RequestLogDeadLetter
from gateway.ids import new_id
from gateway.requestlog.storable import storable_text

__all__ = ["DeadLetters", "default_dead_letter_file", "row_text"]

log = logging.getLogger("sluice.requestlog")

MAX_ERROR = 2000


def default_dead_letter_file(database_url: str) -> Path:
    """Beside the SQLite database; in the working directory for a server database."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = Path(url.database)
        return path.with_name(path.name + ".dead-letters.jsonl")
    return Path("sluice-request-log-dead-letters.jsonl")


def row_text(row: dict[str, Any]) -> str:
    """The row as ASCII JSON: NULs, lone surrogates and any number survive as escapes."""
    return json.dumps(row, default=str, ensure_ascii=True, separators=(",", ":"))


def error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return storable_text(text, MAX_ERROR)


class DeadLetters:
    def __init__(
        self,
        engine: AsyncEngine,
        fallback_file: Path,
        *,
        on_dead_lettered: Callable[[int], None] = lambda n: None,
        on_lost: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._engine = engine
        self.fallback_file = fallback_file
        self._on_dead_lettered = on_dead_lettered
        self._on_lost = on_lost

    async def store(
        self, failed: Sequence[tuple[dict[str, Any], str]], *, file_only: bool = False
    ) -> None:
        """Keep each (row, error) in the table, else in the file; never raises."""
        if not failed:
            return
        now = utcnow()
        records = [
            {
                "id": new_id(),
                "row_id": str(row.get("id")),
                "created_at": now,
                "error": error,
                "row": row_text(row),
            }
            for row, error in failed
        ]
        if file_only:
            await self._to_file(records, "the database did not take them in time")
            return
        try:
            async with self._engine.begin() as connection:
                await connection.execute(insert(RequestLogDeadLetter), records)
        except Exception as exc:
            await self._to_file(records, f"the dead-letter table failed: {error_text(exc)}")
            return
        self._on_dead_lettered(len(records))

    async def _to_file(self, records: list[dict[str, Any]], why: str) -> None:
        lines = "".join(
            json.dumps(record, default=str, ensure_ascii=True) + "\n" for record in records
        )
        try:
            await asyncio.to_thread(self._append, lines)
        except Exception as exc:
            self._on_lost(len(records))
            log.error(
                "%d request log rows lost: %s, and writing %s failed (%s)",
                len(records),
                why,
                self.fallback_file,
                exc,
            )
            return
        self._on_dead_lettered(len(records))
        log.error(
            "%d request log rows written to %s: %s",
            len(records),
            self.fallback_file,
            why,
        )

    def _append(self, lines: str) -> None:
        with self.fallback_file.open("a", encoding="ascii") as handle:
            handle.write(lines)
