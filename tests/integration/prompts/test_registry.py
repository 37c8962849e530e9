"""The registry's services on real SQLite and Postgres: concurrency, atomicity, the cache."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import msgspec
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.changes import LocalChangeFeed
from gateway.db.engine import create_engine, create_sessionmaker
from gateway.errors import Conflict, InvalidRequest, PromptNotFound
from gateway.prompts.abtests import AbTestService, AbTestSpec
from gateway.prompts.bundle import PromptBundle
from gateway.prompts.bundle_store import PromptBundles
from gateway.prompts.cache import PromptCache
from gateway.prompts.results import ResultsReader
from gateway.prompts.service import PromptService
from gateway.prompts.spec import PromptPatch, PromptSpec, VersionSpec


@dataclass
class Registry:
    sessions: async_sessionmaker[AsyncSession]
    changes: LocalChangeFeed
    prompts: PromptService
    bundles: PromptBundles
    tests: AbTestService
    cache: PromptCache
    statements: list[str]


@pytest.fixture
async def registry(database_url: str) -> AsyncIterator[Registry]:
    engine = create_engine(database_url)
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    sessions = create_sessionmaker(engine)
    changes = LocalChangeFeed()
    yield Registry(
        sessions=sessions,
        changes=changes,
        prompts=PromptService(sessions, changes),
        bundles=PromptBundles(sessions, changes),
        tests=AbTestService(sessions, changes, ResultsReader(sessions)),
        cache=PromptCache(sessions, changes),
        statements=statements,
    )
    await engine.dispose()


def _version(text: str, **fields: object) -> VersionSpec:
    return msgspec.convert(
        {"messages": [{"role": "system", "content": text}], **fields}, VersionSpec
    )


def _bundle(slug: str, *texts: str, labels: dict[int, list[str]] | None = None) -> PromptBundle:
    versions = [
        {"messages": [{"role": "system", "content": t}], "labels": (labels or {}).get(i, [])}
        for i, t in enumerate(texts)
    ]
    return msgspec.convert({"slug": slug, "versions": versions}, PromptBundle)


async def test_concurrent_versions_get_distinct_numbers(registry: Registry) -> None:
    await registry.prompts.create_prompt(PromptSpec(slug="busy"))
    created = await asyncio.gather(
        *(registry.prompts.create_version("busy", _version(f"v{i}")) for i in range(8))
    )
    assert sorted(v.version for v in created) == list(range(1, 9))


async def test_import_is_all_or_nothing(registry: Registry) -> None:
    await registry.prompts.create_prompt(PromptSpec(slug="old"))
    await registry.prompts.update_prompt("old", PromptPatch(archived=True))
    with pytest.raises(Conflict):
        await registry.bundles.import_bundles([_bundle("new-one", "x"), _bundle("old", "y")])
    with pytest.raises(PromptNotFound):
        await registry.prompts.get_prompt("new-one")
    with pytest.raises(InvalidRequest) as info:
        await registry.bundles.import_bundles(
            [_bundle("fine", "ok"), _bundle("bad", "{{undeclared}}")]
        )
    assert info.value.param == "prompts[1].versions[0].messages[0].content"
    with pytest.raises(PromptNotFound):
        await registry.prompts.get_prompt("fine")


async def test_import_matches_versions_by_content(registry: Registry) -> None:
    first = await registry.bundles.import_bundles(
        [_bundle("doc", "a", "b", labels={0: ["production"]})]
    )
    assert first.prompts[0].versions_created == [1, 2]
    assert first.prompts[0].labels_moved == {"production": 1}
    again = await registry.bundles.import_bundles(
        [_bundle("doc", "a", "b", labels={0: ["production"]})]
    )
    assert again.changed is False
    dry = await registry.bundles.import_bundles(
        [_bundle("doc", "a", "b", "c", labels={2: ["production"]})], dry_run=True
    )
    assert dry.prompts[0].versions_created == [3] and dry.prompts[0].labels_moved == {
        "production": 3
    }
    assert (
        await registry.prompts.get_prompt("doc")
    ).latest_version == 2  # the dry run wrote nothing
    moved = await registry.bundles.import_bundles(
        [_bundle("doc", "a", "b", "c", labels={1: ["production"]})]
    )
    assert moved.prompts[0].versions_created == [3] and moved.prompts[0].labels_moved == {
        "production": 2
    }


async def test_second_running_test_loses_a_start_race(registry: Registry) -> None:
    await registry.prompts.create_prompt(PromptSpec(slug="raced"))
    await registry.prompts.create_version("raced", _version("a"))
    spec = msgspec.convert(
        {"prompt": "raced", "variants": [{"name": "a", "version": 1}, {"name": "b", "version": 1}]},
        AbTestSpec,
    )
    drafts = [await registry.tests.create(spec) for _ in range(4)]
    outcomes = await asyncio.gather(
        *(registry.tests.start(d.id) for d in drafts), return_exceptions=True
    )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert all(isinstance(o, Conflict) for o in outcomes if isinstance(o, BaseException))


async def test_cache_serves_without_queries_and_forgets_on_change(registry: Registry) -> None:
    await registry.prompts.create_prompt(PromptSpec(slug="hot"))
    await registry.prompts.create_version("hot", _version("one"))
    await registry.prompts.create_version("hot", _version("two"))
    cache = registry.cache
    snapshots = await asyncio.gather(*(cache.snapshot("hot") for _ in range(20)))
    assert cache.loads == 1  # concurrent misses share one load
    assert snapshots[0] is not None and snapshots[0].latest == 2
    await cache.version(snapshots[0], 2)
    before = len(registry.statements)
    for _ in range(100):
        snapshot = await cache.snapshot("hot")
        assert snapshot is not None
        assert (await cache.version(snapshot, 2)) is not None
    assert len(registry.statements) == before  # the steady state touches no database
    await registry.prompts.set_label("hot", "production", 1)
    snapshot = await cache.snapshot("hot")
    assert snapshot is not None and snapshot.labels == {"production": 1}
    assert cache.loads == 2
    assert await cache.snapshot("unknown") is None
    await registry.prompts.create_prompt(PromptSpec(slug="unknown"))
    assert await cache.snapshot("unknown") is not None  # the "no such prompt" is forgotten too


async def test_a_load_racing_a_change_is_not_kept(registry: Registry) -> None:
    await registry.prompts.create_prompt(PromptSpec(slug="race"))
    await registry.prompts.create_version("race", _version("one"))
    cache = registry.cache
    loading = asyncio.ensure_future(cache.snapshot("race"))
    while cache.loads == 0:  # until the load has started (it counts itself before reading)
        await asyncio.sleep(0)
    cache.forget("race")
    await loading
    await cache.snapshot("race")
    assert cache.loads == 2  # the first load's result was used once, not cached
