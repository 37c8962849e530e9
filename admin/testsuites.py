"""Admin: a prompt's test suite — cases with their evaluators, import and export."""

from __future__ import annotations

from typing import Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from admin.auth import require_admin
from admin.pagination import Page, decode_cursor, make_page, page_limit
from gateway.evaluations.config_spec import EvaluatorConfigSpec
from gateway.testsuites.cases import TestCaseService
from gateway.testsuites.records import TestCaseRecord
from gateway.testsuites.specs import TestCasePatch, TestCaseSpec
from gateway.testsuites.suite_io import dump_suite, parse_suite

__all__ = ["SuiteController", "TestCaseController"]

_MEDIA = {"jsonl": "application/x-ndjson", "csv": "text/csv"}


class SuiteController(Controller):
    path = "/admin/prompts/{slug:str}/tests"
    tags = ["admin: tests"]
    guards = [require_admin]

    @post("/", summary="Add a test case (with its evaluators) to the prompt's suite")
    async def create(
        self,
        slug: FromPath[str],
        data: JSONBody[TestCaseSpec],
        test_case_service: NamedDependency[TestCaseService],
    ) -> TestCaseRecord:
        return await test_case_service.create(slug, data)

    @get("/", summary="The prompt's test cases, oldest first")
    async def list_cases(
        self,
        slug: FromPath[str],
        test_case_service: NamedDependency[TestCaseService],
        tag: FromQuery[str | None] = None,
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Page[TestCaseRecord]:
        size = page_limit(limit)
        rows = await test_case_service.list(
            slug, limit=size + 1, after=decode_cursor(cursor), tag=tag
        )
        return make_page(rows, size)

    @post("/import", summary="Import cases from JSONL or CSV (all or nothing)")
    async def import_suite(
        self,
        slug: FromPath[str],
        request: Request[Any, Any, Any],
        test_case_service: NamedDependency[TestCaseService],
        format: FromQuery[Literal["jsonl", "csv"]] = "jsonl",
    ) -> Page[TestCaseRecord]:
        specs = parse_suite((await request.body()).decode("utf-8", "replace"), format)
        created = await test_case_service.import_specs(slug, specs)
        return Page(data=created, next_cursor=None)

    @get("/export", summary="The suite as JSONL or CSV")
    async def export_suite(
        self,
        slug: FromPath[str],
        test_case_service: NamedDependency[TestCaseService],
        format: FromQuery[Literal["jsonl", "csv"]] = "jsonl",
    ) -> Response[str]:
        cases = await test_case_service.list(slug, limit=100_000)
        return Response(dump_suite(cases, format), media_type=_MEDIA[format])


class TestCaseController(Controller):
    path = "/admin/tests"
    tags = ["admin: tests"]
    guards = [require_admin]

    @get("/{case_id:str}", summary="One test case")
    async def get_case(
        self, case_id: FromPath[str], test_case_service: NamedDependency[TestCaseService]
    ) -> TestCaseRecord:
        return await test_case_service.get(case_id)

    @patch("/{case_id:str}", summary="Change a test case (evaluators: /admin/evaluators)")
    async def update(
        self,
        case_id: FromPath[str],
        data: JSONBody[TestCasePatch],
        test_case_service: NamedDependency[TestCaseService],
    ) -> TestCaseRecord:
        return await test_case_service.update(case_id, data)

    @delete("/{case_id:str}", status_code=200, summary="Delete a test case and its evaluators")
    async def remove(
        self, case_id: FromPath[str], test_case_service: NamedDependency[TestCaseService]
    ) -> TestCaseRecord:
        return await test_case_service.delete(case_id)

    @post("/{case_id:str}/evaluators", summary="Add an evaluator to a test case")
    async def add_evaluator(
        self,
        case_id: FromPath[str],
        data: JSONBody[EvaluatorConfigSpec],
        test_case_service: NamedDependency[TestCaseService],
    ) -> TestCaseRecord:
        return await test_case_service.add_evaluator(case_id, data)
