"""Evaluator configs: attach, change, copy and remove them, checked as a whole set per owner.

An owner is a prompt version (production monitoring) or a test case. Every write validates
the owner's complete set with the evaluators library (each evaluator's own config check,
thresholds, dependencies on missing configs, cycles), so a bad regex or schema is a 400 now,
not a failed job later. After a commit the owner is published on the `evaluators` change
topic, so every replica's plan cache forgets it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from evaluators import EvaluatorRegistry, EvaluatorSpec, InvalidSpecsError, validate_specs
from gateway.changes import ChangeFeed
from gateway.db.base import utcnow
from gateway.db.models import EvaluatorConfig, TestCase
from gateway.errors import Conflict, InvalidRequest, NotFound
from gateway.evaluations.config_spec import CopyTarget, EvaluatorConfigPatch, EvaluatorConfigSpec
from gateway.evaluations.owners import (
    Owner,
    config_row,
    owner_of,
    rows_of,
    spec_of,
    test_case_topic,
    version_owner,
)
from gateway.evaluations.records import EvaluatorConfigRecord
from gateway.ids import new_id

__all__ = ["TOPIC", "EvaluatorConfigService", "Owner", "spec_of", "test_case_topic"]

TOPIC = "evaluators"
MAX_CONFIGS_PER_OWNER = 50
# Production has no expected output: these must carry their own reference value.
_NEEDS_REFERENCE = {
    "word_overlap": "expected",
    "levenshtein": "expected",
    "rouge_l": "expected",
    "semantic_similarity": "expected",
    "exact_match": "value",
}


class EvaluatorConfigService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        changes: ChangeFeed,
        registry: EvaluatorRegistry,
        *,
        model_exists: Callable[[str], bool] = lambda model: True,
    ) -> None:
        self._sessions = sessions
        self._changes = changes
        self._registry = registry
        self._model_exists = model_exists

    # -- reads ---------------------------------------------------------------------------

    async def list_for_version(self, slug: str, number: int) -> list[EvaluatorConfigRecord]:
        async with self._sessions() as session:
            owner = await version_owner(session, slug, number)
            rows = await rows_of(session, owner)
        return [self._record(row, owner) for row in rows]

    async def list_for_test_case(self, test_case_id: str) -> list[EvaluatorConfigRecord]:
        owner = Owner(test_case_id=test_case_id)
        async with self._sessions() as session:
            rows = await rows_of(session, owner)
        return [self._record(row, owner) for row in rows]

    async def get(self, config_id: str) -> EvaluatorConfigRecord:
        async with self._sessions() as session:
            row = await config_row(session, config_id)
            owner = await owner_of(session, row)
        return self._record(row, owner)

    # -- writes --------------------------------------------------------------------------

    async def create_for_version(
        self, slug: str, number: int, spec: EvaluatorConfigSpec
    ) -> EvaluatorConfigRecord:
        async with self._sessions.begin() as session:
            owner = await version_owner(session, slug, number, lock=True)
            record = await self._insert(session, owner, spec)
        await self._changes.publish(TOPIC, owner.topic_payload)
        return record

    async def create_for_test_case(
        self, test_case_id: str, spec: EvaluatorConfigSpec
    ) -> EvaluatorConfigRecord:
        owner = Owner(test_case_id=test_case_id)
        async with self._sessions.begin() as session:
            record = await self._insert(session, owner, spec)
        await self._changes.publish(TOPIC, owner.topic_payload)
        return record

    async def update(self, config_id: str, patch: EvaluatorConfigPatch) -> EvaluatorConfigRecord:
        async with self._sessions.begin() as session:
            row = await config_row(session, config_id)
            owner = await owner_of(session, row, lock=True)
            siblings = [r for r in await rows_of(session, owner) if r.id != row.id]
            changes = {
                name: getattr(patch, name)
                for name in EvaluatorConfigPatch.__struct_fields__
                if getattr(patch, name) is not msgspec.UNSET
            }
            if "depends_on" in changes:
                changes["depends_on"] = _resolve_references(changes["depends_on"], siblings)
            updated = replace(spec_of(row), **changes)
            self._check(owner, siblings, updated)
            for name, value in changes.items():
                setattr(row, name, value)
            row.updated_at = utcnow()
            await session.flush()
            record = self._record(row, owner)
        await self._changes.publish(TOPIC, owner.topic_payload)
        return record

    async def delete(self, config_id: str) -> EvaluatorConfigRecord:
        async with self._sessions.begin() as session:
            row = await config_row(session, config_id)
            owner = await owner_of(session, row, lock=True)
            dependents = [
                r.id for r in await rows_of(session, owner) if row.id in (r.depends_on or [])
            ]
            if dependents:
                raise Conflict(
                    f"Evaluator '{config_id}' is a dependency of {', '.join(dependents)}: "
                    "remove it from their depends_on first.",
                    param="id",
                )
            record = self._record(row, owner)
            await session.delete(row)
        await self._changes.publish(TOPIC, owner.topic_payload)
        return record

    async def copy(self, config_id: str, target: CopyTarget) -> EvaluatorConfigRecord:
        if (target.test_case_id is None) == (target.prompt is None and target.version is None):
            raise InvalidRequest(
                'Copy to a version with {"prompt": slug, "version": n} or to a test case with '
                '{"test_case_id": id}, not both.',
                param="test_case_id",
            )
        if target.test_case_id is None and (target.prompt is None or target.version is None):
            raise InvalidRequest(
                "Copying to a prompt version needs both 'prompt' and 'version'.",
                param="prompt" if target.prompt is None else "version",
            )
        async with self._sessions.begin() as session:
            source = await config_row(session, config_id)
            source_owner = await owner_of(session, source)
            by_id = {r.id: r for r in await rows_of(session, source_owner)}
            if target.test_case_id is not None:
                owner = Owner(test_case_id=target.test_case_id)
            else:
                assert target.prompt is not None and target.version is not None
                owner = await version_owner(session, target.prompt, target.version, lock=True)
            # Dependencies travel by evaluator key: the copy depends on the target's own.
            keys = [by_id[d].evaluator_key if d in by_id else d for d in source.depends_on]
            spec = EvaluatorConfigSpec(
                evaluator_key=source.evaluator_key,
                config=dict(source.config),
                weight=source.weight,
                threshold=source.threshold,
                run_mode="queued" if source.run_mode == "queued" else "inline",
                sampling_rate=source.sampling_rate,
                depends_on=keys,
                enabled=source.enabled,
            )
            record = await self._insert(session, owner, spec)
        await self._changes.publish(TOPIC, owner.topic_payload)
        return record

    # -- helpers -------------------------------------------------------------------------

    async def _insert(
        self, session: AsyncSession, owner: Owner, spec: EvaluatorConfigSpec
    ) -> EvaluatorConfigRecord:
        if (
            owner.test_case_id is not None
            and await session.get(TestCase, owner.test_case_id) is None
        ):
            raise NotFound(f"No test case with id '{owner.test_case_id}'.", param="test_case_id")
        siblings = await rows_of(session, owner)
        if len(siblings) >= MAX_CONFIGS_PER_OWNER:
            raise InvalidRequest(
                f"{owner.describe().capitalize()} already has {MAX_CONFIGS_PER_OWNER} "
                "evaluators, the most one may have.",
                param="evaluator_key",
            )
        run_mode = spec.run_mode
        if run_mode is None:
            known = spec.evaluator_key in self._registry
            calls_out = known and self._registry.get(spec.evaluator_key).awaits_io
            run_mode = "queued" if calls_out else "inline"
        now = utcnow()
        new = EvaluatorSpec(
            id=new_id(),
            evaluator_key=spec.evaluator_key,
            config=spec.config,
            weight=spec.weight,
            threshold=spec.threshold,
            run_mode=run_mode,
            sampling_rate=spec.sampling_rate,
            depends_on=tuple(_resolve_references(spec.depends_on, siblings)),
            enabled=spec.enabled,
        )
        self._check(owner, siblings, new)
        row = EvaluatorConfig(
            id=new.id,
            prompt_version_id=owner.prompt_version_id,
            test_case_id=owner.test_case_id,
            evaluator_key=new.evaluator_key,
            config=dict(new.config),
            weight=new.weight,
            threshold=new.threshold,
            run_mode=new.run_mode,
            sampling_rate=new.sampling_rate,
            depends_on=list(new.depends_on),
            enabled=new.enabled,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        await session.flush()
        return self._record(row, owner)

    def _check(
        self, owner: Owner, siblings: Sequence[EvaluatorConfig], spec: EvaluatorSpec
    ) -> None:
        """The owner's whole set with `spec` in it must validate; else a 400 naming the field."""
        try:
            validate_specs([*(spec_of(r) for r in siblings), spec], registry=self._registry)
        except InvalidSpecsError as exc:
            mine = [p for p in exc.problems if p.spec_id in (spec.id, None)] or list(exc.problems)
            first = mine[0]
            message = "; ".join(f"{p.field}: {p.message}" for p in mine)
            raise InvalidRequest(f"Invalid evaluator: {message}.", param=first.field) from None
        evaluator = self._registry.get(spec.evaluator_key)
        if evaluator.awaits_io and spec.run_mode == "inline":
            raise InvalidRequest(
                f"{spec.evaluator_key} waits on a model or a thread: it must run queued, "
                "never inline in the gateway.",
                param="run_mode",
            )
        if spec.evaluator_key == "llm_judge":
            model = spec.config.get("model")
            if isinstance(model, str) and not self._model_exists(model):
                raise InvalidRequest(
                    f"The judge model '{model}' is not routed by this gateway (see SLUICE_CONFIG).",
                    param="config.model",
                )
        if not owner.is_version:
            return
        field = _NEEDS_REFERENCE.get(spec.evaluator_key)
        if field is not None and spec.config.get(field) is None:
            raise InvalidRequest(
                f"{spec.evaluator_key} on a prompt version needs config.{field}: production "
                "responses have no expected output (test cases do).",
                param=f"config.{field}",
            )
        if (
            spec.evaluator_key == "json_schema"
            and spec.config.get("schema") is None
            and owner.response_schema is None
        ):
            raise InvalidRequest(
                f"json_schema needs a schema: set config.schema, or create a version with a "
                f"response_schema ({owner.describe()} has none).",
                param="config.schema",
            )

    def _record(self, row: EvaluatorConfig, owner: Owner) -> EvaluatorConfigRecord:
        key = row.evaluator_key
        version = self._registry.get(key).version if key in self._registry else "?"
        return EvaluatorConfigRecord(
            id=row.id,
            prompt=owner.prompt,
            version=owner.version,
            prompt_version_id=row.prompt_version_id,
            test_case_id=row.test_case_id,
            evaluator_key=key,
            evaluator_version=version,
            config=dict(row.config),
            weight=row.weight,
            threshold=row.threshold,
            run_mode=row.run_mode,
            sampling_rate=row.sampling_rate,
            depends_on=list(row.depends_on),
            enabled=row.enabled,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def _resolve_references(
    references: Sequence[str], siblings: Sequence[EvaluatorConfig]
) -> list[str]:
    """Config ids as given; an evaluator key names the sibling with that key, if only one."""
    ids = {row.id for row in siblings}
    resolved = []
    for reference in references:
        if reference in ids:
            resolved.append(reference)
            continue
        matching = [row.id for row in siblings if row.evaluator_key == reference]
        if len(matching) > 1:
            raise InvalidRequest(
                f"depends_on: several evaluators use the key '{reference}'; name one by its id "
                f"({', '.join(matching)}).",
                param="depends_on",
            )
        # An unknown reference is kept: validation reports it as a missing dependency.
        resolved.append(matching[0] if matching else reference)
    return resolved
