"""Prompt files applied and exported: many prompts in one transaction, versions by content.

`import_bundles` checks every bundle first, then applies them all in one transaction (or, for a
dry run, rolls it back): a version whose content hash the prompt already has is reused, other
versions are appended in file order, and labels move to the versions that list them.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.changes import ChangeFeed
from gateway.db.base import utcnow
from gateway.db.models import Prompt, PromptVersion
from gateway.errors import Conflict, SluiceError
from gateway.ids import new_id
from gateway.prompts import store
from gateway.prompts.bundle import (
    ImportOutcome,
    ImportReport,
    PromptBundle,
    checked_bundles,
    export_version,
)
from gateway.prompts.service import TOPIC, insert_version, not_writable
from gateway.prompts.spec import VersionContent

__all__ = ["PromptBundles"]


class PromptBundles:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], changes: ChangeFeed) -> None:
        self._sessions = sessions
        self._changes = changes

    async def import_bundles(
        self, bundles: list[PromptBundle], *, dry_run: bool = False, created_by: str | None = None
    ) -> ImportReport:
        """Apply prompt files all at once or not at all; versions are matched by content."""
        checked = checked_bundles(bundles)
        outcomes = []
        try:
            async with self._sessions() as session:
                for index, (bundle, contents) in enumerate(checked):
                    try:
                        outcomes.append(await _import_one(session, bundle, contents, created_by))
                    except SluiceError as exc:
                        # Point at the bundle, so the CLI can name the file.
                        where = f"prompts[{index}]"
                        exc.param = f"{where}.{exc.param}" if exc.param else where
                        raise
                if dry_run:
                    await session.rollback()
                else:
                    await session.commit()
        except IntegrityError:
            raise Conflict(
                "Another change to these prompts landed at the same time; run the import again."
            ) from None
        changed = [o.slug for o in outcomes if o.changed]
        if not dry_run:
            for slug in changed:
                await self._changes.publish(TOPIC, slug)
        return ImportReport(dry_run=dry_run, prompts=outcomes, changed=bool(changed))

    async def export_bundles(self, slugs: list[str] | None = None) -> list[dict[str, Any]]:
        """Every live prompt (or those named) with all versions, in prompt-file shape."""
        query = select(Prompt).where(Prompt.archived_at.is_(None)).order_by(Prompt.slug)
        if slugs:
            query = query.where(Prompt.slug.in_(slugs))
        bundles = []
        async with self._sessions() as session:
            for prompt in (await session.scalars(query)).all():
                labels = store.labels_by_version(await store.labels_of(session, prompt.id))
                versions = (
                    await session.scalars(
                        select(PromptVersion)
                        .where(PromptVersion.prompt_id == prompt.id)
                        .order_by(PromptVersion.version)
                    )
                ).all()
                bundle: dict[str, Any] = {"slug": prompt.slug}
                if prompt.description:
                    bundle["description"] = prompt.description
                if prompt.tags:
                    bundle["tags"] = list(prompt.tags)
                bundle["versions"] = [
                    export_version(
                        {
                            **msgspec.structs.asdict(store.version_record(v, prompt.slug, [])),
                            "labels": sorted(labels.get(v.version, [])),
                        }
                    )
                    for v in versions
                ]
                bundles.append(bundle)
        return bundles


async def _import_one(
    session: AsyncSession,
    bundle: PromptBundle,
    contents: list[VersionContent],
    created_by: str | None,
) -> ImportOutcome:
    now = utcnow()
    outcome = ImportOutcome(slug=bundle.slug)
    prompt = await store.lock_prompt(session, bundle.slug, now)
    if prompt is None:
        prompt = Prompt(
            id=new_id(),
            slug=bundle.slug,
            description=bundle.description,
            tags=list(bundle.tags),
            created_at=now,
            updated_at=now,
        )
        session.add(prompt)
        await session.flush()
        outcome.created = True
    elif prompt.archived_at is not None:
        raise not_writable(bundle.slug)
    elif prompt.description != bundle.description or list(prompt.tags) != list(bundle.tags):
        prompt.description = bundle.description
        prompt.tags = list(bundle.tags)
        outcome.updated = True
    known: dict[str, PromptVersion] = {}
    rows = await session.scalars(
        select(PromptVersion)
        .where(PromptVersion.prompt_id == prompt.id)
        .order_by(PromptVersion.version)
    )
    for row in rows:
        known[row.content_hash] = row  # the highest version wins for repeated content
    wanted: dict[str, PromptVersion] = {}
    for version, content in zip(bundle.versions, contents, strict=True):
        digest = content.content_hash()
        row_ = known.get(digest)
        if row_ is None:
            row_ = await insert_version(
                session, prompt, content, version.note, version.created_by or created_by
            )
            known[digest] = row_
            outcome.versions_created.append(row_.version)
        for label in version.labels:
            wanted[label] = row_
    for label, target in wanted.items():
        if await store.upsert_label(session, prompt.id, label, target.id, now):
            outcome.labels_moved[label] = target.version
    return outcome
