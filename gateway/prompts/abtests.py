"""A/B tests of a prompt's versions: create, start, stop, read results, promote the winner.

At most one test runs per prompt (a partial unique index says so in the database). Starting,
stopping and promoting publish the prompt's slug so every replica's resolver sees it at once.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.changes import ChangeFeed
from gateway.db.base import utcnow
from gateway.db.models import AbTest, Prompt
from gateway.errors import Conflict, InvalidRequest, NotFound, PromptNotFound, VersionNotFound
from gateway.ids import new_id
from gateway.prompts import store
from gateway.prompts.records import AbTestRecord
from gateway.prompts.results import AbResults, ResultsReader
from gateway.prompts.service import TOPIC
from gateway.prompts.spec import LABEL_PATTERN, Slug

__all__ = ["AbTestService", "AbTestSpec", "PromoteSpec", "VariantSpec"]

VariantName = Annotated[str, msgspec.Meta(pattern=LABEL_PATTERN, max_length=100)]


class VariantSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: VariantName
    version: Annotated[int, msgspec.Meta(ge=1)]
    weight: Annotated[float, msgspec.Meta(ge=0, le=1e9)] = 1.0


class AbTestSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    prompt: Slug
    variants: Annotated[list[VariantSpec], msgspec.Meta(min_length=2, max_length=20)]
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    min_samples: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 100
    """Requests each variant needs before its results count as conclusive."""
    start: bool = False
    """Start at once instead of creating a draft."""


class PromoteSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    variant: str | None = None
    """The winner; without it, the results' leader when it is significant."""


def _check_variants(variants: list[VariantSpec]) -> None:
    names = [v.name for v in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidRequest(
            f"Variant names must differ: {', '.join(duplicates)} appears twice.",
            param="variants",
        )
    if not sum(v.weight for v in variants) > 0:
        raise InvalidRequest("Variant weights must add up to a positive number.", param="variants")


class AbTestService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        changes: ChangeFeed,
        results: ResultsReader,
    ) -> None:
        self._sessions = sessions
        self._changes = changes
        self._results = results

    async def create(self, spec: AbTestSpec) -> AbTestRecord:
        _check_variants(spec.variants)
        now = utcnow()
        try:
            async with self._sessions.begin() as session:
                prompt = await session.scalar(select(Prompt).where(Prompt.slug == spec.prompt))
                if prompt is None:
                    raise PromptNotFound(f"No prompt with slug '{spec.prompt}'.", param="prompt")
                if prompt.archived_at is not None:
                    raise Conflict(f"Prompt '{spec.prompt}' is archived.", param="prompt")
                variants = []
                for index, variant in enumerate(spec.variants):
                    row = await store.version_by_number(session, prompt.id, variant.version)
                    if row is None:
                        raise VersionNotFound(
                            f"Prompt '{spec.prompt}' has no version {variant.version}.",
                            param=f"variants[{index}].version",
                        )
                    variants.append(
                        {
                            "name": variant.name,
                            "version": variant.version,
                            "version_id": row.id,
                            "weight": variant.weight,
                        }
                    )
                test = AbTest(
                    id=new_id(),
                    prompt_id=prompt.id,
                    name=spec.name or " vs ".join(v.name for v in spec.variants),
                    status="draft",
                    variants=variants,
                    min_samples=spec.min_samples,
                    created_at=now,
                )
                session.add(test)
                if spec.start:
                    await self._ensure_none_running(session, prompt.id, spec.prompt)
                    test.status, test.started_at = "running", now
                await session.flush()
                record = store.ab_test_record(test, spec.prompt)
        except IntegrityError:
            raise self._second_test(spec.prompt) from None
        if spec.start:
            await self._changes.publish(TOPIC, spec.prompt)
        return record

    @staticmethod
    def _second_test(slug: str, running: str | None = None) -> Conflict:
        which = f" ({running})" if running else ""
        return Conflict(
            f"Prompt '{slug}' already has a running A/B test{which}: stop it first.",
            param="prompt",
        )

    async def _ensure_none_running(self, session: AsyncSession, prompt_id: str, slug: str) -> None:
        running = await session.scalar(
            select(AbTest.id).where(AbTest.prompt_id == prompt_id, AbTest.status == "running")
        )
        if running is not None:
            raise self._second_test(slug, running)

    async def _load(self, session: AsyncSession, test_id: str) -> tuple[AbTest, str]:
        row = await session.get(AbTest, test_id)
        if row is None:
            raise NotFound(f"No A/B test with id '{test_id}'.", param="id")
        slug = await session.scalar(select(Prompt.slug).where(Prompt.id == row.prompt_id))
        return row, slug or ""

    async def get(self, test_id: str) -> AbTestRecord:
        async with self._sessions() as session:
            row, slug = await self._load(session, test_id)
        return store.ab_test_record(row, slug)

    async def list_tests(
        self, *, limit: int, before: str | None, prompt: str | None, status: str | None
    ) -> list[AbTestRecord]:
        query = (
            select(AbTest, Prompt.slug)
            .join(Prompt, Prompt.id == AbTest.prompt_id)
            .order_by(AbTest.id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(AbTest.id < before)
        if prompt is not None:
            query = query.where(Prompt.slug == prompt)
        if status is not None:
            query = query.where(AbTest.status == status)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [store.ab_test_record(row, slug) for row, slug in rows]

    async def start(self, test_id: str) -> AbTestRecord:
        try:
            async with self._sessions.begin() as session:
                row, slug = await self._load(session, test_id)
                if row.status == "running":
                    return store.ab_test_record(row, slug)
                if row.winner is not None:
                    raise Conflict(
                        f"A/B test {test_id} was promoted ({row.winner} won); create a new one.",
                        param="id",
                    )
                await self._ensure_none_running(session, row.prompt_id, slug)
                row.status, row.started_at, row.stopped_at = "running", utcnow(), None
                await session.flush()
                record = store.ab_test_record(row, slug)
        except IntegrityError:
            raise self._second_test(slug) from None
        await self._changes.publish(TOPIC, slug)
        return record

    async def stop(self, test_id: str) -> AbTestRecord:
        async with self._sessions.begin() as session:
            row, slug = await self._load(session, test_id)
            if row.status != "running":
                raise Conflict(f"A/B test {test_id} is not running ({row.status}).", param="id")
            row.status, row.stopped_at = "stopped", utcnow()
            record = store.ab_test_record(row, slug)
        await self._changes.publish(TOPIC, slug)
        return record

    async def results(self, test_id: str) -> AbResults:
        return await self._results.read(await self.get(test_id))

    async def promote(self, test_id: str, spec: PromoteSpec) -> AbTestRecord:
        """Point `production` at the winner's version and stop the test."""
        test = await self.get(test_id)
        if test.status == "draft":
            raise Conflict(f"A/B test {test_id} never ran: nothing to promote.", param="id")
        winner = spec.variant
        if winner is None:
            results = await self._results.read(test)
            if results.leader is None or not results.conclusive:
                raise Conflict(
                    "No variant has won yet (minimum sample not reached or no significant "
                    'difference): name the one to promote, {"variant": "<name>"}.',
                    param="variant",
                )
            winner = results.leader
        chosen = next((v for v in test.variants if v.name == winner), None)
        if chosen is None:
            names = ", ".join(v.name for v in test.variants)
            raise InvalidRequest(
                f"A/B test {test_id} has no variant '{winner}' (variants: {names}).",
                param="variant",
            )
        now = utcnow()
        async with self._sessions.begin() as session:
            row, slug = await self._load(session, test_id)
            prompt = await store.lock_prompt(session, slug, now)
            if prompt is None or prompt.archived_at is not None:
                raise Conflict(f"Prompt '{slug}' is archived or gone.", param="id")
            await store.upsert_label(session, prompt.id, "production", chosen.version_id, now)
            if row.status == "running":
                row.stopped_at = now
            row.status, row.winner = "stopped", chosen.name
            record = store.ab_test_record(row, slug)
        await self._changes.publish(TOPIC, slug)
        return record
