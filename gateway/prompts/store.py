"""The registry's queries: rows in, records out, inside a session the caller owns.

Services compose these inside one transaction; nothing here commits, publishes or decides.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import AbTest, Prompt, PromptLabel, PromptVersion, RequestLog
from gateway.prompts.records import AbTestRecord, PromptRecord, Variant, VersionRecord

__all__ = [
    "ab_test_record",
    "delete_prompt_rows",
    "has_logged_responses",
    "labels_by_version",
    "labels_of",
    "latest_number",
    "lock_prompt",
    "prompt_record",
    "upsert_label",
    "version_by_number",
    "version_record",
]


async def lock_prompt(session: AsyncSession, slug: str, now: datetime) -> Prompt | None:
    """Touch the prompt row first, so concurrent writers to one prompt queue up here (a row
    lock on Postgres, the write lock on SQLite) instead of failing later on a unique key."""
    result = await session.execute(
        update(Prompt).where(Prompt.slug == slug).values(updated_at=now).returning(Prompt.id)
    )
    prompt_id = result.scalar_one_or_none()
    if prompt_id is None:
        return None
    return await session.get(Prompt, prompt_id)


async def latest_number(session: AsyncSession, prompt_id: str) -> int | None:
    number: int | None = await session.scalar(
        select(func.max(PromptVersion.version)).where(PromptVersion.prompt_id == prompt_id)
    )
    return number


async def labels_of(session: AsyncSession, prompt_id: str) -> dict[str, tuple[int, str]]:
    """Label name -> (version number, version id)."""
    rows = await session.execute(
        select(PromptLabel.name, PromptVersion.version, PromptVersion.id)
        .join(PromptVersion, PromptVersion.id == PromptLabel.version_id)
        .where(PromptLabel.prompt_id == prompt_id)
        .order_by(PromptLabel.name)
    )
    return {name: (number, version_id) for name, number, version_id in rows}


def labels_by_version(labels: dict[str, tuple[int, str]]) -> dict[int, list[str]]:
    by_version: dict[int, list[str]] = {}
    for name, (number, _) in labels.items():
        by_version.setdefault(number, []).append(name)
    return by_version


async def version_by_number(
    session: AsyncSession, prompt_id: str, number: int
) -> PromptVersion | None:
    row: PromptVersion | None = await session.scalar(
        select(PromptVersion).where(
            PromptVersion.prompt_id == prompt_id, PromptVersion.version == number
        )
    )
    return row


async def has_logged_responses(session: AsyncSession, slug: str) -> bool:
    found = await session.scalar(
        select(RequestLog.id).where(RequestLog.prompt_slug == slug).limit(1)
    )
    return found is not None


async def delete_prompt_rows(session: AsyncSession, prompt_id: str) -> None:
    # Children first, explicitly: correct even where foreign keys are not enforced.
    await session.execute(delete(PromptLabel).where(PromptLabel.prompt_id == prompt_id))
    await session.execute(delete(AbTest).where(AbTest.prompt_id == prompt_id))
    await session.execute(delete(PromptVersion).where(PromptVersion.prompt_id == prompt_id))
    await session.execute(delete(Prompt).where(Prompt.id == prompt_id))


async def prompt_record(session: AsyncSession, row: Prompt) -> PromptRecord:
    labels = await labels_of(session, row.id)
    return PromptRecord(
        id=row.id,
        slug=row.slug,
        description=row.description,
        tags=list(row.tags),
        created_at=row.created_at,
        updated_at=row.updated_at,
        archived_at=row.archived_at,
        latest_version=await latest_number(session, row.id),
        labels={name: number for name, (number, _) in labels.items()},
    )


def version_record(row: PromptVersion, slug: str, labels: list[str]) -> VersionRecord:
    return VersionRecord(
        id=row.id,
        prompt=slug,
        version=row.version,
        messages=row.messages,
        model=row.model,
        params=row.params,
        variables=row.variables,
        variables_schema=row.variables_schema,
        response_schema=row.response_schema,
        note=row.note,
        created_by=row.created_by,
        created_at=row.created_at,
        content_hash=row.content_hash,
        labels=sorted(labels),
    )


def ab_test_record(row: AbTest, slug: str) -> AbTestRecord:
    variants: list[dict[str, Any]] = row.variants
    return AbTestRecord(
        id=row.id,
        prompt=slug,
        name=row.name,
        status=row.status,
        variants=[
            Variant(
                name=v["name"],
                version=int(v["version"]),
                weight=float(v["weight"]),
                version_id=v["version_id"],
            )
            for v in variants
        ],
        min_samples=row.min_samples,
        winner=row.winner,
        created_at=row.created_at,
        started_at=row.started_at,
        stopped_at=row.stopped_at,
    )


async def upsert_label(
    session: AsyncSession, prompt_id: str, name: str, version_id: str, now: datetime
) -> bool:
    """Point `name` at `version_id`; False when it already did (nothing written)."""
    row = await session.get(PromptLabel, (prompt_id, name))
    if row is None:
        session.add(
            PromptLabel(prompt_id=prompt_id, name=name, version_id=version_id, updated_at=now)
        )
        await session.flush()
        return True
    if row.version_id == version_id:
        return False
    row.version_id = version_id
    row.updated_at = now
    await session.flush()
    return True
