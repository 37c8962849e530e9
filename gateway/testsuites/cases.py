"""Test cases of a prompt's suite: create (with their evaluators), list, change, delete.

A case's evaluators are evaluator configs owned by the case, written through the evaluation
side's `EvaluatorConfigService`, so they are validated exactly like a version's (and can be
copied between a version and a case with `POST /admin/evaluators/{id}/copy`). A case whose
evaluators are refused is removed again, so a failed create leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.base import utcnow
from gateway.db.models import Prompt, TestCase
from gateway.errors import Conflict, NotFound, PromptNotFound, SluiceError
from gateway.evaluations.config_spec import EvaluatorConfigSpec
from gateway.evaluations.configs import EvaluatorConfigService
from gateway.ids import new_id
from gateway.testsuites.records import TestCaseRecord
from gateway.testsuites.specs import TestCasePatch, TestCaseSpec

__all__ = ["TestCaseService", "prompt_by_slug"]

MAX_CASES_PER_PROMPT = 10_000


async def prompt_by_slug(session: AsyncSession, slug: str) -> Prompt:
    prompt = await session.scalar(select(Prompt).where(Prompt.slug == slug))
    if prompt is None:
        raise PromptNotFound(f"No prompt with slug '{slug}'.", param="prompt")
    return prompt


class TestCaseService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], configs: EvaluatorConfigService
    ) -> None:
        self._sessions = sessions
        self._configs = configs

    async def create(self, slug: str, spec: TestCaseSpec) -> TestCaseRecord:
        now = utcnow()
        try:
            async with self._sessions.begin() as session:
                prompt = await prompt_by_slug(session, slug)
                await self._check_name_free(session, prompt.id, spec.name)
                row = TestCase(
                    id=new_id(),
                    prompt_id=prompt.id,
                    name=spec.name,
                    variables=dict(spec.variables),
                    messages=list(spec.messages),
                    expected_output=spec.expected_output,
                    tags=list(dict.fromkeys(spec.tags)),
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
        except IntegrityError:
            raise _name_taken(slug, spec.name) from None
        try:
            for evaluator in spec.evaluators:
                await self._configs.create_for_test_case(row.id, evaluator)
        except SluiceError as exc:
            await self._remove(row.id)
            exc.message = f"Test case '{spec.name}': {exc.message}"
            raise
        return await self.get(row.id)

    async def import_specs(self, slug: str, specs: Sequence[TestCaseSpec]) -> list[TestCaseRecord]:
        """Create every case or none: a refused one removes those created before it."""
        async with self._sessions() as session:
            prompt = await prompt_by_slug(session, slug)
            names = [spec.name for spec in specs]
            taken = (
                await session.scalars(
                    select(TestCase.name).where(
                        TestCase.prompt_id == prompt.id, TestCase.name.in_(names)
                    )
                )
            ).all()
        if taken:
            raise Conflict(
                f"The suite already has cases named {', '.join(sorted(taken)[:10])}: rename or "
                "delete them first.",
                param="name",
            )
        created: list[TestCaseRecord] = []
        try:
            for spec in specs:
                created.append(await self.create(slug, spec))
        except BaseException:
            for record in created:
                await self._remove(record.id)
            raise
        return created

    async def add_evaluator(self, case_id: str, spec: EvaluatorConfigSpec) -> TestCaseRecord:
        await self.get(case_id)
        await self._configs.create_for_test_case(case_id, spec)
        return await self.get(case_id)

    async def _check_name_free(self, session: AsyncSession, prompt_id: str, name: str) -> None:
        taken = await session.scalar(
            select(TestCase.id).where(TestCase.prompt_id == prompt_id, TestCase.name == name)
        )
        if taken is not None:
            raise Conflict(f"The suite already has a test case named '{name}'.", param="name")
        count = await session.scalar(
            select(TestCase.id).where(TestCase.prompt_id == prompt_id).offset(MAX_CASES_PER_PROMPT)
        )
        if count is not None:
            raise Conflict(f"A suite holds at most {MAX_CASES_PER_PROMPT} test cases.")

    async def get(self, case_id: str) -> TestCaseRecord:
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(TestCase, Prompt.slug)
                    .join(Prompt, Prompt.id == TestCase.prompt_id)
                    .where(TestCase.id == case_id)
                )
            ).first()
        if found is None:
            raise NotFound(f"No test case with id '{case_id}'.", param="id")
        return await self._record(found[0], found[1])

    async def list(
        self, slug: str, *, limit: int, after: str | None = None, tag: str | None = None
    ) -> list[TestCaseRecord]:
        """The suite in creation order (ids are time-ordered)."""
        async with self._sessions() as session:
            prompt = await prompt_by_slug(session, slug)
            query = (
                select(TestCase)
                .where(TestCase.prompt_id == prompt.id)
                .order_by(TestCase.id)
                .limit(limit)
            )
            if after:
                query = query.where(TestCase.id > after)
            rows = list((await session.scalars(query)).all())
        if tag is not None:
            rows = [row for row in rows if tag in row.tags]
        return [await self._record(row, slug) for row in rows]

    async def rows(self, prompt_id: str) -> Sequence[TestCase]:
        async with self._sessions() as session:
            query = select(TestCase).where(TestCase.prompt_id == prompt_id).order_by(TestCase.id)
            return list((await session.scalars(query)).all())

    async def update(self, case_id: str, patch: TestCasePatch) -> TestCaseRecord:
        changes = {
            name: getattr(patch, name)
            for name in TestCasePatch.__struct_fields__
            if getattr(patch, name) is not msgspec.UNSET
        }
        try:
            async with self._sessions.begin() as session:
                row = await session.get(TestCase, case_id)
                if row is None:
                    raise NotFound(f"No test case with id '{case_id}'.", param="id")
                if "name" in changes and changes["name"] != row.name:
                    await self._check_name_free(session, row.prompt_id, changes["name"])
                if "tags" in changes:
                    changes["tags"] = list(dict.fromkeys(changes["tags"]))
                for name, value in changes.items():
                    setattr(row, name, value)
                row.updated_at = utcnow()
        except IntegrityError:
            raise _name_taken("", str(changes.get("name"))) from None
        return await self.get(case_id)

    async def delete(self, case_id: str) -> TestCaseRecord:
        record = await self.get(case_id)
        await self._remove(case_id)
        return record

    async def _remove(self, case_id: str) -> None:
        # Its evaluator configs go with it (cascade); past results keep their copy of the case.
        async with self._sessions.begin() as session:
            await session.execute(delete(TestCase).where(TestCase.id == case_id))

    async def _record(self, row: TestCase, slug: str) -> TestCaseRecord:
        return TestCaseRecord(
            id=row.id,
            prompt=slug,
            name=row.name,
            variables=dict(row.variables),
            messages=list(row.messages),
            expected_output=row.expected_output,
            tags=list(row.tags),
            evaluators=await self._configs.list_for_test_case(row.id),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def _name_taken(slug: str, name: str) -> Conflict:
    return Conflict(f"The suite already has a test case named '{name}'.", param="name")
