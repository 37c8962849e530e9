"""The registry as the request path sees it: per-slug snapshots and compiled versions in memory.

A snapshot (prompt id, labels, latest number, running A/B test) is loaded on first use and kept
until a change notice for its slug arrives (or, as a safety net, for `ttl` seconds; one second
while the change feed is down). Versions never change, so compiled versions are kept until the
cache is full. In the steady state a resolution touches no database. Concurrent misses for one
slug share one load, and a load that raced with a change notice is used once but not kept.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.changes import FORGET_ALL, ChangeFeed
from gateway.db.models import AbTest, Prompt
from gateway.prompts import store
from gateway.prompts.assignment import RunningTest
from gateway.prompts.compiled import CompiledVersion
from gateway.prompts.service import TOPIC

__all__ = ["PromptCache", "PromptSnapshot"]

UNHEALTHY_TTL = 1.0


@dataclass(frozen=True, slots=True)
class PromptSnapshot:
    id: str
    slug: str
    archived: bool
    latest: int | None
    labels: dict[str, int]
    test: RunningTest | None


class PromptCache:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        changes: ChangeFeed,
        *,
        ttl: float = 60.0,
        max_entries: int = 20_000,
    ) -> None:
        self._sessions = sessions
        self._changes = changes
        self._ttl = ttl
        self._max_entries = max_entries
        self._snapshots: dict[str, tuple[PromptSnapshot | None, float]] = {}
        self._loading: dict[str, asyncio.Task[PromptSnapshot | None]] = {}
        self._versions: dict[tuple[str, int], CompiledVersion] = {}
        self._epoch = 0
        self.loads = 0
        """Snapshot loads from the database (tests and metrics read it)."""
        changes.subscribe(TOPIC, self.forget)

    def forget(self, slug: str) -> None:
        self._epoch += 1
        if slug == FORGET_ALL:
            self._snapshots.clear()
            self._loading.clear()
        else:
            self._snapshots.pop(slug, None)
            self._loading.pop(slug, None)

    async def snapshot(self, slug: str) -> PromptSnapshot | None:
        cached = self._snapshots.get(slug)
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        task = self._loading.get(slug)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load(slug))
            task.add_done_callback(_retrieve)
            self._loading[slug] = task
        # Shielded: a caller that goes away must not cancel the load others wait on.
        return await asyncio.shield(task)

    async def _load(self, slug: str) -> PromptSnapshot | None:
        epoch = self._epoch
        try:
            snapshot = await self._read(slug)
        finally:
            if self._loading.get(slug) is asyncio.current_task():
                del self._loading[slug]
        if self._epoch == epoch:
            ttl = self._ttl if self._changes.healthy else UNHEALTHY_TTL
            if len(self._snapshots) >= self._max_entries:  # unknown slugs must not grow it forever
                self._snapshots.clear()
            self._snapshots[slug] = (snapshot, time.monotonic() + ttl)
        return snapshot

    async def _read(self, slug: str) -> PromptSnapshot | None:
        self.loads += 1
        async with self._sessions() as session:
            prompt = await session.scalar(select(Prompt).where(Prompt.slug == slug))
            if prompt is None:
                return None
            labels = await store.labels_of(session, prompt.id)
            latest = await store.latest_number(session, prompt.id)
            row = await session.scalar(
                select(AbTest).where(AbTest.prompt_id == prompt.id, AbTest.status == "running")
            )
        test = None
        if row is not None:
            record = store.ab_test_record(row, slug)
            test = RunningTest.of(record.id, record.variants)
        return PromptSnapshot(
            id=prompt.id,
            slug=slug,
            archived=prompt.archived_at is not None,
            latest=latest,
            labels={name: number for name, (number, _) in labels.items()},
            test=test,
        )

    async def version(self, snapshot: PromptSnapshot, number: int) -> CompiledVersion | None:
        key = (snapshot.id, number)
        compiled = self._versions.get(key)
        if compiled is not None:
            return compiled
        async with self._sessions() as session:
            row = await store.version_by_number(session, snapshot.id, number)
        if row is None:
            return None
        compiled = CompiledVersion.from_row(row, snapshot.slug)
        if len(self._versions) >= self._max_entries:
            self._versions.clear()
        self._versions[key] = compiled
        return compiled


def _retrieve(task: asyncio.Task[PromptSnapshot | None]) -> None:
    # Mark a failed load's exception as seen even when every waiter went away.
    if not task.cancelled():
        task.exception()
