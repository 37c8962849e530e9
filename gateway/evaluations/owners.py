"""Who an evaluator config belongs to — a prompt version or a test case — and reading owners
and their configs inside a session the caller owns (nothing here commits)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from evaluators import EvaluatorSpec
from gateway.db.models import EvaluatorConfig, Prompt, PromptVersion
from gateway.errors import NotFound, PromptNotFound, VersionNotFound

__all__ = [
    "Owner",
    "config_row",
    "owner_of",
    "rows_of",
    "spec_of",
    "test_case_topic",
    "version_owner",
]


def test_case_topic(test_case_id: str) -> str:
    """The change payload for a test case's configs (a version's is its id)."""
    return f"test:{test_case_id}"


@dataclass(frozen=True, slots=True)
class Owner:
    prompt_version_id: str | None = None
    test_case_id: str | None = None
    prompt: str | None = None
    version: int | None = None
    response_schema: dict[str, Any] | None = None

    @property
    def is_version(self) -> bool:
        return self.prompt_version_id is not None

    @property
    def topic_payload(self) -> str:
        if self.prompt_version_id is not None:
            return self.prompt_version_id
        assert self.test_case_id is not None
        return test_case_topic(self.test_case_id)

    def describe(self) -> str:
        if self.is_version:
            return f"version {self.version} of prompt '{self.prompt}'"
        return f"test case '{self.test_case_id}'"


def spec_of(row: EvaluatorConfig) -> EvaluatorSpec:
    return EvaluatorSpec(
        id=row.id,
        evaluator_key=row.evaluator_key,
        config=row.config,
        weight=row.weight,
        threshold=row.threshold,
        run_mode="queued" if row.run_mode == "queued" else "inline",
        sampling_rate=row.sampling_rate,
        depends_on=tuple(row.depends_on),
        enabled=row.enabled,
    )


async def version_owner(
    session: AsyncSession, slug: str, number: int, *, lock: bool = False
) -> Owner:
    prompt = await session.scalar(select(Prompt).where(Prompt.slug == slug))
    if prompt is None:
        raise PromptNotFound(f"No prompt with slug '{slug}'.", param="slug")
    query = select(PromptVersion).where(
        PromptVersion.prompt_id == prompt.id, PromptVersion.version == number
    )
    if lock:  # concurrent edits of one version's set queue up (a row lock on Postgres)
        query = query.with_for_update()
    version = await session.scalar(query)
    if version is None:
        raise VersionNotFound(f"Prompt '{slug}' has no version {number}.", param="version")
    return Owner(
        prompt_version_id=version.id,
        prompt=slug,
        version=number,
        response_schema=version.response_schema,
    )


async def owner_of(session: AsyncSession, row: EvaluatorConfig, *, lock: bool = False) -> Owner:
    if row.prompt_version_id is None:
        return Owner(test_case_id=row.test_case_id)
    found = (
        await session.execute(
            select(Prompt.slug, PromptVersion.version)
            .join(PromptVersion, PromptVersion.prompt_id == Prompt.id)
            .where(PromptVersion.id == row.prompt_version_id)
        )
    ).first()
    if found is None:  # the version went away underneath: the config went with it (cascade)
        raise NotFound(f"No evaluator with id '{row.id}'.", param="id")
    return await version_owner(session, found[0], found[1], lock=lock)


async def rows_of(session: AsyncSession, owner: Owner) -> list[EvaluatorConfig]:
    query = select(EvaluatorConfig).order_by(EvaluatorConfig.id)
    if owner.prompt_version_id is not None:
        query = query.where(EvaluatorConfig.prompt_version_id == owner.prompt_version_id)
    else:
        query = query.where(EvaluatorConfig.test_case_id == owner.test_case_id)
    return list((await session.scalars(query)).all())


async def config_row(session: AsyncSession, config_id: str) -> EvaluatorConfig:
    row = await session.get(EvaluatorConfig, config_id)
    if row is None:
        raise NotFound(f"No evaluator with id '{config_id}'.", param="id")
    return row
