"""Admin: evaluator configs on prompt versions — attach, list, change, remove, copy."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from admin.auth import require_admin
from admin.pagination import Page, decode_cursor, make_page, page_limit
from gateway.evaluations.config_spec import CopyTarget, EvaluatorConfigPatch, EvaluatorConfigSpec
from gateway.evaluations.configs import EvaluatorConfigService
from gateway.evaluations.records import EvaluatorConfigRecord

__all__ = ["EvaluatorController", "VersionEvaluatorController"]


class VersionEvaluatorController(Controller):
    path = "/admin/prompts/{slug:str}/versions/{number:int}/evaluators"
    tags = ["admin: evaluators"]
    guards = [require_admin]

    @post("/", summary="Attach an evaluator to a prompt version (monitors its production traffic)")
    async def create(
        self,
        slug: FromPath[str],
        number: FromPath[int],
        data: JSONBody[EvaluatorConfigSpec],
        evaluator_configs: NamedDependency[EvaluatorConfigService],
    ) -> EvaluatorConfigRecord:
        return await evaluator_configs.create_for_version(slug, number, data)

    @get("/", summary="The version's evaluators, oldest first")
    async def list_evaluators(
        self,
        slug: FromPath[str],
        number: FromPath[int],
        evaluator_configs: NamedDependency[EvaluatorConfigService],
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Page[EvaluatorConfigRecord]:
        size = page_limit(limit)
        after = decode_cursor(cursor)
        rows = await evaluator_configs.list_for_version(slug, number)
        rows = [row for row in rows if after is None or row.id > after]
        return make_page(rows[: size + 1], size)


class EvaluatorController(Controller):
    path = "/admin/evaluators"
    tags = ["admin: evaluators"]
    guards = [require_admin]

    @get("/{evaluator_id:str}", summary="One evaluator config")
    async def get_evaluator(
        self,
        evaluator_id: FromPath[str],
        evaluator_configs: NamedDependency[EvaluatorConfigService],
    ) -> EvaluatorConfigRecord:
        return await evaluator_configs.get(evaluator_id)

    @patch("/{evaluator_id:str}", summary="Change an evaluator (its key stays)")
    async def update(
        self,
        evaluator_id: FromPath[str],
        data: JSONBody[EvaluatorConfigPatch],
        evaluator_configs: NamedDependency[EvaluatorConfigService],
    ) -> EvaluatorConfigRecord:
        return await evaluator_configs.update(evaluator_id, data)

    @delete("/{evaluator_id:str}", status_code=200, summary="Remove an evaluator")
    async def remove(
        self,
        evaluator_id: FromPath[str],
        evaluator_configs: NamedDependency[EvaluatorConfigService],
    ) -> EvaluatorConfigRecord:
        return await evaluator_configs.delete(evaluator_id)

    @post(
        "/{evaluator_id:str}/copy",
        summary='Copy to another version ({"prompt", "version"}) or a test case ({"test_case_id"})',
    )
    async def copy(
        self,
        evaluator_id: FromPath[str],
        data: JSONBody[CopyTarget],
        evaluator_configs: NamedDependency[EvaluatorConfigService],
    ) -> EvaluatorConfigRecord:
        return await evaluator_configs.copy(evaluator_id, data)
