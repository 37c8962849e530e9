"""Ready-to-run evaluation plans per owner, and the prompt versions they render, in memory.

`PlanCache` holds, per prompt version (or test case), its configs validated into an
`EvaluationPlan`, or None when nothing monitors it — the answer for most traffic, so it is
cached too and checked without awaiting (`peek`). Entries live until a change notice on the
`evaluators` topic names their owner (or `ttl` passes; one second while the change feed is
down). `VersionCatalog` keeps compiled prompt versions, which never change, so a response's
rendered request can be rebuilt from its log row.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from evaluators import (
    EvaluationPlan,
    EvaluatorRegistry,
    EvaluatorSpec,
    InvalidSpecsError,
    should_sample,
    validate_specs,
)
from gateway.changes import FORGET_ALL, ChangeFeed
from gateway.db.models import EvaluatorConfig, Prompt, PromptVersion
from gateway.evaluations.configs import TOPIC
from gateway.evaluations.owners import spec_of, test_case_topic
from gateway.prompts.compiled import CompiledVersion

__all__ = ["MISSING", "OwnerPlan", "PlanCache", "VersionCatalog", "VersionInfo"]

UNHEALTHY_TTL = 1.0
MISSING: Any = object()
"""What `PlanCache.peek` returns for an owner it has not loaded."""


@dataclass(frozen=True, slots=True)
class OwnerPlan:
    """The enabled configs of one owner, validated; `problem` says why `plan` is None."""

    owner: str
    specs: tuple[EvaluatorSpec, ...]
    versions: Mapping[str, str]
    """Evaluator version by spec id, stored with each result."""
    created_at: Mapping[str, datetime]
    plan: EvaluationPlan | None
    problem: str | None = None

    def wants_worker(self, request_id: str) -> bool:
        """Whether a queued spec is sampled for this request (so a job must be enqueued)."""
        return any(
            spec.enabled
            and spec.run_mode == "queued"
            and should_sample(request_id, spec.id, spec.sampling_rate)
            for spec in self.specs
        )

    def expected_ids(self, request_id: str, logged_at: datetime) -> set[str]:
        """Specs that should have a result for a response logged at `logged_at`."""
        return {
            spec.id
            for spec in self.specs
            if spec.enabled
            and self.created_at[spec.id] <= logged_at
            and should_sample(request_id, spec.id, spec.sampling_rate)
        }


@dataclass(frozen=True, slots=True)
class VersionInfo:
    id: str
    compiled: CompiledVersion
    response_schema: dict[str, Any] | None


class PlanCache:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        changes: ChangeFeed,
        registry: EvaluatorRegistry,
        *,
        ttl: float = 60.0,
        max_entries: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._changes = changes
        self._registry = registry
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[OwnerPlan | None, float]] = {}
        self._loading: dict[str, asyncio.Task[OwnerPlan | None]] = {}
        self._epoch = 0
        changes.subscribe(TOPIC, self.forget)

    def forget(self, owner: str) -> None:
        self._epoch += 1
        if owner == FORGET_ALL:
            self._entries.clear()
            self._loading.clear()
        else:
            self._entries.pop(owner, None)
            self._loading.pop(owner, None)

    def peek(self, owner: str) -> OwnerPlan | None:
        """The cached plan (None: nothing monitors it) or MISSING, without waiting."""
        cached = self._entries.get(owner)
        if cached is None or self._clock() >= cached[1]:
            return MISSING  # type: ignore[no-any-return]
        return cached[0]

    async def for_version(self, version_id: str) -> OwnerPlan | None:
        return await self._get(version_id)

    async def for_test_case(self, test_case_id: str) -> OwnerPlan | None:
        return await self._get(test_case_topic(test_case_id))

    async def _get(self, owner: str) -> OwnerPlan | None:
        cached = self.peek(owner)
        if cached is not MISSING:
            return cached
        task = self._loading.get(owner)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load(owner))
            task.add_done_callback(_retrieve)
            self._loading[owner] = task
        return await asyncio.shield(task)

    async def _load(self, owner: str) -> OwnerPlan | None:
        epoch = self._epoch
        try:
            plan = await self._read(owner)
        finally:
            if self._loading.get(owner) is asyncio.current_task():
                del self._loading[owner]
        if self._epoch == epoch:  # a change notice during the read: use it once, don't keep it
            ttl = self._ttl if self._changes.healthy else UNHEALTHY_TTL
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[owner] = (plan, self._clock() + ttl)
        return plan

    async def _read(self, owner: str) -> OwnerPlan | None:
        query = select(EvaluatorConfig).order_by(EvaluatorConfig.id)
        if owner.startswith("test:"):
            query = query.where(EvaluatorConfig.test_case_id == owner[5:])
        else:
            query = query.where(EvaluatorConfig.prompt_version_id == owner)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        if not any(row.enabled for row in rows):
            return None
        specs = tuple(spec_of(row) for row in rows)
        versions = {
            spec.id: (
                self._registry.get(spec.evaluator_key).version
                if spec.evaluator_key in self._registry
                else "?"
            )
            for spec in specs
        }
        created = {row.id: row.created_at for row in rows}
        try:
            plan = validate_specs(specs, registry=self._registry)
        except InvalidSpecsError as exc:
            # Checked at every write, so this means a code change made stored configs invalid.
            return OwnerPlan(owner, specs, versions, created, None, str(exc))
        return OwnerPlan(owner, specs, versions, created, plan)


class VersionCatalog:
    """Compiled prompt versions by id; versions are immutable, so entries never go stale."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, max_entries: int = 20_000
    ) -> None:
        self._sessions = sessions
        self._max_entries = max_entries
        self._versions: dict[str, VersionInfo | None] = {}

    async def get(self, version_id: str) -> VersionInfo | None:
        if version_id in self._versions:
            return self._versions[version_id]
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(PromptVersion, Prompt.slug)
                    .join(Prompt, Prompt.id == PromptVersion.prompt_id)
                    .where(PromptVersion.id == version_id)
                )
            ).first()
        info = None
        if found is not None:
            row, slug = found
            info = VersionInfo(row.id, CompiledVersion.from_row(row, slug), row.response_schema)
        if len(self._versions) >= self._max_entries:
            self._versions.clear()
        self._versions[version_id] = info
        return info


def _retrieve(task: asyncio.Task[OwnerPlan | None]) -> None:
    # Mark a failed load's exception as seen even when every waiter went away.
    if not task.cancelled():
        task.exception()
