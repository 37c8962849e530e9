"""Prompt bundles: a prompt with all its versions and labels, as files hold them.

The same shape travels three ways: read from a YAML/TOML prompt file, sent to
`POST /admin/prompts:import`, and answered by `GET /admin/prompts:export` for `sluice prompts
pull`. Versions carry no number of their own that matters: they are matched by content hash.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from gateway.errors import InvalidRequest
from gateway.prompts.spec import (
    Description,
    LabelName,
    PromptSpec,
    Slug,
    Tag,
    VersionContent,
    VersionSpec,
    check_version,
)

__all__ = [
    "BundleVersion",
    "ImportOutcome",
    "ImportReport",
    "ImportRequest",
    "PromptBundle",
    "checked_bundles",
    "export_version",
]


class BundleVersion(VersionSpec, kw_only=True):
    labels: Annotated[list[LabelName], msgspec.Meta(max_length=50)] = []
    """Labels that point at this version after the import."""
    version: Annotated[int, msgspec.Meta(ge=1)] | None = None
    """Written by pull for readers; ignored by push, which matches versions by content."""


class PromptBundle(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    slug: Slug
    description: Description = ""
    tags: Annotated[list[Tag], msgspec.Meta(max_length=50)] = []
    versions: Annotated[list[BundleVersion], msgspec.Meta(min_length=1, max_length=1000)]

    def prompt_spec(self) -> PromptSpec:
        return PromptSpec(slug=self.slug, description=self.description, tags=self.tags)


class ImportRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    prompts: Annotated[list[PromptBundle], msgspec.Meta(max_length=1000)]
    dry_run: bool = False
    """Check and report what would change, write nothing."""
    created_by: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    """Recorded on versions that don't name their own author."""


class ImportOutcome(msgspec.Struct, kw_only=True):
    slug: str
    created: bool = False
    updated: bool = False
    """Description or tags changed."""
    versions_created: list[int] = []
    labels_moved: dict[str, int] = {}

    @property
    def changed(self) -> bool:
        return self.created or self.updated or bool(self.versions_created or self.labels_moved)


class ImportReport(msgspec.Struct, kw_only=True):
    dry_run: bool
    prompts: list[ImportOutcome]
    changed: bool


def checked_bundles(
    bundles: list[PromptBundle],
) -> list[tuple[PromptBundle, list[VersionContent]]]:
    """Check every version of every bundle before anything is written; errors name the path
    (`prompts[2].versions[0].messages[1].content`)."""
    seen: dict[str, int] = {}
    checked = []
    for index, bundle in enumerate(bundles):
        where = f"prompts[{index}]"
        if bundle.slug in seen:
            raise InvalidRequest(
                f"Prompt '{bundle.slug}' appears twice (prompts[{seen[bundle.slug]}] and "
                f"{where}): one file per prompt.",
                param=f"{where}.slug",
            )
        seen[bundle.slug] = index
        labelled: dict[str, int] = {}
        contents = []
        for number, version in enumerate(bundle.versions):
            at = f"{where}.versions[{number}]"
            try:
                contents.append(check_version(version))
            except InvalidRequest as exc:
                raise InvalidRequest(
                    exc.message, param=f"{at}.{exc.param or ''}".rstrip(".")
                ) from None
            for label in version.labels:
                if label == "latest":
                    raise InvalidRequest(
                        "'latest' always means the highest version and cannot be set.",
                        param=f"{at}.labels",
                    )
                if label in labelled:
                    raise InvalidRequest(
                        f"Label '{label}' is on two versions (versions[{labelled[label]}] and "
                        f"versions[{number}]) of prompt '{bundle.slug}'.",
                        param=f"{at}.labels",
                    )
                labelled[label] = number
        checked.append((bundle, contents))
    return checked


def export_version(content: dict[str, Any]) -> dict[str, Any]:
    """A stored version as a bundle entry, with the fields files need, in reading order."""
    order = (
        "version",
        "labels",
        "note",
        "model",
        "params",
        "variables",
        "variables_schema",
        "response_schema",
        "messages",
    )
    return {key: content[key] for key in order if content.get(key) not in (None, "", [], {})}
