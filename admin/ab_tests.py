"""Admin: A/B tests of prompt versions, their results and the promotion of a winner."""

from __future__ import annotations

from typing import Literal

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from admin.auth import require_admin
from admin.pagination import Page, decode_cursor, make_page, page_limit
from gateway.prompts.abtests import AbTestService, AbTestSpec, PromoteSpec
from gateway.prompts.records import AbTestRecord
from gateway.prompts.results import AbResults

__all__ = ["AbTestController"]


class AbTestDetail(AbTestRecord, frozen=True, kw_only=True):
    results: AbResults


class AbTestController(Controller):
    path = "/admin/ab-tests"
    tags = ["admin: A/B tests"]
    guards = [require_admin]

    @post("/", summary="Create an A/B test (a draft unless start is true)")
    async def create(
        self, data: JSONBody[AbTestSpec], ab_test_service: NamedDependency[AbTestService]
    ) -> AbTestRecord:
        return await ab_test_service.create(data)

    @get("/", summary="List A/B tests, newest first")
    async def list_tests(
        self,
        ab_test_service: NamedDependency[AbTestService],
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
        prompt: FromQuery[str | None] = None,
        status: FromQuery[Literal["draft", "running", "stopped"] | None] = None,
    ) -> Page[AbTestRecord]:
        size = page_limit(limit)
        rows = await ab_test_service.list_tests(
            limit=size + 1, before=decode_cursor(cursor), prompt=prompt, status=status
        )
        return make_page(rows, size)

    @get("/{test_id:str}", summary="One A/B test with per-variant results and significance")
    async def get_test(
        self, test_id: FromPath[str], ab_test_service: NamedDependency[AbTestService]
    ) -> AbTestDetail:
        test = await ab_test_service.get(test_id)
        results = await ab_test_service.results(test_id)
        return AbTestDetail(**msgspec.structs.asdict(test), results=results)

    @post("/{test_id:str}/start", status_code=200, summary="Start splitting traffic")
    async def start(
        self, test_id: FromPath[str], ab_test_service: NamedDependency[AbTestService]
    ) -> AbTestRecord:
        return await ab_test_service.start(test_id)

    @post("/{test_id:str}/stop", status_code=200, summary="Stop splitting traffic")
    async def stop(
        self, test_id: FromPath[str], ab_test_service: NamedDependency[AbTestService]
    ) -> AbTestRecord:
        return await ab_test_service.stop(test_id)

    @post(
        "/{test_id:str}/promote",
        status_code=200,
        summary="Point the production label at the winner and stop the test",
    )
    async def promote(
        self,
        test_id: FromPath[str],
        ab_test_service: NamedDependency[AbTestService],
        data: JSONBody[PromoteSpec | None] = None,
    ) -> AbTestRecord:
        return await ab_test_service.promote(test_id, data or PromoteSpec())
