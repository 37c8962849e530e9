"""The prompt registry's writes and admin reads: prompts, immutable versions and labels.

Every change commits first and then publishes the prompt's slug on the `prompts` change topic,
so each replica's resolution cache forgets it within milliseconds.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.changes import ChangeFeed
from gateway.db.base import utcnow
from gateway.db.models import AbTest, Prompt, PromptLabel, PromptVersion
from gateway.errors import Conflict, InvalidRequest, NotFound, PromptNotFound, VersionNotFound
from gateway.ids import new_id
from gateway.prompts import store
from gateway.prompts.records import DeleteOutcome, LabelRecord, PromptRecord, VersionRecord
from gateway.prompts.spec import (
    LABEL_PATTERN,
    PromptPatch,
    PromptSpec,
    VersionContent,
    VersionSpec,
    check_version,
)

__all__ = ["TOPIC", "PromptService", "insert_version", "not_writable"]

TOPIC = "prompts"


def not_writable(slug: str) -> Conflict:
    return Conflict(
        f"Prompt '{slug}' is archived: restore it with PATCH /admin/prompts/{slug} "
        '{"archived": false} first.',
        param="slug",
    )


class PromptService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], changes: ChangeFeed) -> None:
        self._sessions = sessions
        self._changes = changes

    async def _published(self, *slugs: str) -> None:
        for slug in dict.fromkeys(slugs):
            await self._changes.publish(TOPIC, slug)

    # -- prompts -------------------------------------------------------------------------

    async def create_prompt(self, spec: PromptSpec) -> PromptRecord:
        now = utcnow()
        row = Prompt(
            id=new_id(),
            slug=spec.slug,
            description=spec.description,
            tags=list(spec.tags),
            created_at=now,
            updated_at=now,
        )
        try:
            async with self._sessions.begin() as session:
                existing = await session.scalar(select(Prompt).where(Prompt.slug == spec.slug))
                if existing is not None:
                    if existing.archived_at is not None:
                        raise not_writable(spec.slug)
                    raise Conflict(f"A prompt with slug '{spec.slug}' exists.", param="slug")
                session.add(row)
                await session.flush()
                record = await store.prompt_record(session, row)
        except IntegrityError:
            raise Conflict(f"A prompt with slug '{spec.slug}' exists.", param="slug") from None
        await self._published(spec.slug)  # forgets a cached "no such prompt"
        return record

    async def list_prompts(
        self, *, limit: int, after: str | None, archived: bool = False, tag: str | None = None
    ) -> list[PromptRecord]:
        """Up to `limit` prompts by slug after `after`. Tags live in a JSON list, so a tag is
        matched here rather than in SQL (one code path for both databases), scanning on until
        the page is full."""
        matches: list[Prompt] = []
        async with self._sessions() as session:
            while len(matches) < limit:
                query = select(Prompt).order_by(Prompt.slug).limit(limit)
                if after is not None:
                    query = query.where(Prompt.slug > after)
                if not archived:
                    query = query.where(Prompt.archived_at.is_(None))
                rows = (await session.scalars(query)).all()
                if not rows:
                    break
                matches.extend(row for row in rows if tag is None or tag in row.tags)
                after = rows[-1].slug
            return [await store.prompt_record(session, row) for row in matches[:limit]]

    async def _prompt(self, session: AsyncSession, slug: str) -> Prompt:
        row = await session.scalar(select(Prompt).where(Prompt.slug == slug))
        if row is None:
            raise PromptNotFound(f"No prompt with slug '{slug}'.", param="slug")
        return row

    async def get_prompt(self, slug: str) -> PromptRecord:
        async with self._sessions() as session:
            return await store.prompt_record(session, await self._prompt(session, slug))

    async def update_prompt(self, slug: str, patch: PromptPatch) -> PromptRecord:
        now = utcnow()
        async with self._sessions.begin() as session:
            row = await store.lock_prompt(session, slug, now)
            if row is None:
                raise PromptNotFound(f"No prompt with slug '{slug}'.", param="slug")
            if patch.description is not None:
                row.description = patch.description
            if patch.tags is not None:
                row.tags = list(patch.tags)
            if patch.archived is not None:
                row.archived_at = now if patch.archived else None
                if patch.archived:
                    await _stop_running_tests(session, row.id, now)
            await session.flush()
            record = await store.prompt_record(session, row)
        await self._published(slug)
        return record

    async def delete_prompt(self, slug: str) -> DeleteOutcome:
        """Delete a prompt, or archive it when logged responses point at its versions."""
        now = utcnow()
        async with self._sessions.begin() as session:
            row = await store.lock_prompt(session, slug, now)
            if row is None:
                raise PromptNotFound(f"No prompt with slug '{slug}'.", param="slug")
            keep = await store.has_logged_responses(session, slug)
            if keep:
                row.archived_at = row.archived_at or now
                await _stop_running_tests(session, row.id, now)
            else:
                await store.delete_prompt_rows(session, row.id)
        await self._published(slug)
        return DeleteOutcome(slug=slug, deleted=not keep, archived=keep)

    # -- versions ------------------------------------------------------------------------

    async def create_version(self, slug: str, spec: VersionSpec) -> VersionRecord:
        content = check_version(spec)
        async with self._sessions.begin() as session:
            prompt = await self._writable(session, slug)
            row = await insert_version(session, prompt, content, spec.note, spec.created_by)
            record = store.version_record(row, slug, [])
        await self._published(slug)
        return record

    async def _writable(self, session: AsyncSession, slug: str) -> Prompt:
        prompt = await store.lock_prompt(session, slug, utcnow())
        if prompt is None:
            raise PromptNotFound(f"No prompt with slug '{slug}'.", param="slug")
        if prompt.archived_at is not None:
            raise not_writable(slug)
        return prompt

    async def list_versions(
        self, slug: str, *, limit: int, before: int | None
    ) -> list[VersionRecord]:
        async with self._sessions() as session:
            prompt = await self._prompt(session, slug)
            query = (
                select(PromptVersion)
                .where(PromptVersion.prompt_id == prompt.id)
                .order_by(PromptVersion.version.desc())
                .limit(limit)
            )
            if before is not None:
                query = query.where(PromptVersion.version < before)
            rows = (await session.scalars(query)).all()
            labels = store.labels_by_version(await store.labels_of(session, prompt.id))
        return [store.version_record(row, slug, labels.get(row.version, [])) for row in rows]

    async def get_version(self, slug: str, number: int) -> VersionRecord:
        async with self._sessions() as session:
            prompt = await self._prompt(session, slug)
            row = await store.version_by_number(session, prompt.id, number)
            if row is None:
                raise VersionNotFound(f"Prompt '{slug}' has no version {number}.", param="version")
            labels = store.labels_by_version(await store.labels_of(session, prompt.id))
        return store.version_record(row, slug, labels.get(number, []))

    # -- labels --------------------------------------------------------------------------

    async def set_label(self, slug: str, label: str, number: int) -> LabelRecord:
        if not re.fullmatch(LABEL_PATTERN, label) or len(label) > 100:
            raise InvalidRequest(
                f"Label '{label[:100]}' is not valid: use up to 100 lowercase letters, digits, "
                "'-', '_' and '.', starting with a letter or digit.",
                param="label",
            )
        if label == "latest":
            raise InvalidRequest(
                "'latest' always means the highest version and cannot be set.", param="label"
            )
        now = utcnow()
        async with self._sessions.begin() as session:
            prompt = await self._writable(session, slug)
            version = await store.version_by_number(session, prompt.id, number)
            if version is None:
                raise VersionNotFound(
                    f"Prompt '{slug}' has no version {number}: a label must point at one.",
                    param="version",
                )
            await store.upsert_label(session, prompt.id, label, version.id, now)
        await self._published(slug)
        return LabelRecord(
            prompt=slug, label=label, version=number, version_id=version.id, updated_at=now
        )

    async def list_labels(self, slug: str) -> list[LabelRecord]:
        async with self._sessions() as session:
            prompt = await self._prompt(session, slug)
            rows = await session.execute(
                select(PromptLabel, PromptVersion.version)
                .join(PromptVersion, PromptVersion.id == PromptLabel.version_id)
                .where(PromptLabel.prompt_id == prompt.id)
                .order_by(PromptLabel.name)
            )
            return [
                LabelRecord(
                    prompt=slug,
                    label=label.name,
                    version=number,
                    version_id=label.version_id,
                    updated_at=label.updated_at,
                )
                for label, number in rows
            ]

    async def delete_label(self, slug: str, label: str) -> None:
        async with self._sessions.begin() as session:
            prompt = await self._writable(session, slug)
            row = await session.get(PromptLabel, (prompt.id, label))
            if row is None:
                raise NotFound(f"Prompt '{slug}' has no label '{label}'.", param="label")
            await session.delete(row)
        await self._published(slug)


async def insert_version(
    session: AsyncSession,
    prompt: Prompt,
    content: VersionContent,
    note: str,
    created_by: str | None,
) -> PromptVersion:
    """Insert the next version of a prompt locked by `store.lock_prompt`."""
    number = (await store.latest_number(session, prompt.id) or 0) + 1
    row = PromptVersion(
        id=new_id(),
        prompt_id=prompt.id,
        version=number,
        messages=content.messages,
        model=content.model,
        params=content.params,
        variables=content.variables,
        variables_schema=content.variables_schema,
        response_schema=content.response_schema,
        note=note,
        created_by=created_by,
        created_at=utcnow(),
        content_hash=content.content_hash(),
    )
    session.add(row)
    await session.flush()
    return row


async def _stop_running_tests(session: AsyncSession, prompt_id: str, now: datetime) -> None:
    rows = await session.scalars(
        select(AbTest).where(AbTest.prompt_id == prompt_id, AbTest.status == "running")
    )
    for row in rows:
        row.status = "stopped"
        row.stopped_at = now
