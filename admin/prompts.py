"""Admin: prompts, their versions and labels, and prompt-file import/export."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from admin.auth import require_admin
from admin.pagination import Page, decode_cursor, make_page, page_limit
from gateway.errors import InvalidRequest
from gateway.prompts.bundle import ImportReport, ImportRequest
from gateway.prompts.bundle_store import PromptBundles
from gateway.prompts.records import DeleteOutcome, LabelRecord, PromptRecord, VersionRecord
from gateway.prompts.service import PromptService
from gateway.prompts.spec import PromptPatch, PromptSpec, VersionSpec

__all__ = ["PromptBundleController", "PromptController"]


class LabelTarget(msgspec.Struct, forbid_unknown_fields=True):
    version: Annotated[int, msgspec.Meta(ge=1)]


def _version_cursor(cursor: str | None) -> int | None:
    value = decode_cursor(cursor)
    if value is None:
        return None
    if not value.isdigit():
        raise InvalidRequest("cursor is not one this API returned.", param="cursor")
    return int(value)


class PromptController(Controller):
    path = "/admin/prompts"
    tags = ["admin: prompts"]
    guards = [require_admin]

    @post("/", summary="Create a prompt")
    async def create(
        self, data: JSONBody[PromptSpec], prompt_service: NamedDependency[PromptService]
    ) -> PromptRecord:
        return await prompt_service.create_prompt(data)

    @get("/", summary="List prompts by slug (archived ones with ?archived=true)")
    async def list_prompts(
        self,
        prompt_service: NamedDependency[PromptService],
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
        archived: FromQuery[bool] = False,
        tag: FromQuery[str | None] = None,
    ) -> Page[PromptRecord]:
        size = page_limit(limit)
        rows = await prompt_service.list_prompts(
            limit=size + 1, after=decode_cursor(cursor), archived=archived, tag=tag
        )
        return make_page(rows, size, key="slug")

    @get("/{slug:str}", summary="One prompt, with its labels and latest version number")
    async def get_prompt(
        self, slug: FromPath[str], prompt_service: NamedDependency[PromptService]
    ) -> PromptRecord:
        return await prompt_service.get_prompt(slug)

    @patch("/{slug:str}", summary="Change description or tags; archive or restore")
    async def update(
        self,
        slug: FromPath[str],
        data: JSONBody[PromptPatch],
        prompt_service: NamedDependency[PromptService],
    ) -> PromptRecord:
        return await prompt_service.update_prompt(slug, data)

    @delete(
        "/{slug:str}",
        status_code=200,
        summary="Delete a prompt; one with logged responses is archived instead",
    )
    async def delete_prompt(
        self, slug: FromPath[str], prompt_service: NamedDependency[PromptService]
    ) -> DeleteOutcome:
        return await prompt_service.delete_prompt(slug)

    @post("/{slug:str}/versions", summary="Create the next version (immutable)")
    async def create_version(
        self,
        slug: FromPath[str],
        data: JSONBody[VersionSpec],
        prompt_service: NamedDependency[PromptService],
    ) -> VersionRecord:
        return await prompt_service.create_version(slug, data)

    @get("/{slug:str}/versions", summary="List versions, newest first")
    async def list_versions(
        self,
        slug: FromPath[str],
        prompt_service: NamedDependency[PromptService],
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Page[VersionRecord]:
        size = page_limit(limit)
        rows = await prompt_service.list_versions(
            slug, limit=size + 1, before=_version_cursor(cursor)
        )
        return make_page(rows, size, key="version")

    @get("/{slug:str}/versions/{number:int}", summary="One version")
    async def get_version(
        self,
        slug: FromPath[str],
        number: FromPath[int],
        prompt_service: NamedDependency[PromptService],
    ) -> VersionRecord:
        return await prompt_service.get_version(slug, number)

    @get("/{slug:str}/labels", summary="The prompt's labels")
    async def list_labels(
        self, slug: FromPath[str], prompt_service: NamedDependency[PromptService]
    ) -> list[LabelRecord]:
        return await prompt_service.list_labels(slug)

    @put(
        "/{slug:str}/labels/{label:str}",
        summary="Point a label at a version (takes effect at once)",
    )
    async def set_label(
        self,
        slug: FromPath[str],
        label: FromPath[str],
        data: JSONBody[LabelTarget],
        prompt_service: NamedDependency[PromptService],
    ) -> LabelRecord:
        return await prompt_service.set_label(slug, label, data.version)

    @delete("/{slug:str}/labels/{label:str}", summary="Remove a label")
    async def delete_label(
        self,
        slug: FromPath[str],
        label: FromPath[str],
        prompt_service: NamedDependency[PromptService],
    ) -> None:
        await prompt_service.delete_label(slug, label)


class PromptBundleController(Controller):
    """Prompt files in and out, for `sluice prompts push` and `pull`."""

    path = "/admin"
    tags = ["admin: prompts"]
    guards = [require_admin]

    @post(
        "/prompts:import",
        status_code=200,
        summary="Apply prompt files: all or nothing, versions matched by content hash",
    )
    async def import_prompts(
        self, data: JSONBody[ImportRequest], prompt_bundles: NamedDependency[PromptBundles]
    ) -> ImportReport:
        return await prompt_bundles.import_bundles(
            data.prompts, dry_run=data.dry_run, created_by=data.created_by
        )

    @get("/prompts:export", summary="Every live prompt with all versions, in prompt-file shape")
    async def export_prompts(
        self,
        prompt_bundles: NamedDependency[PromptBundles],
        prompt: FromQuery[list[str] | None] = None,
    ) -> dict[str, Any]:
        return {"prompts": await prompt_bundles.export_bundles(prompt)}
