"""What the prompt registry hands out: prompts, versions, labels and A/B tests as values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

__all__ = [
    "AbTestRecord",
    "DeleteOutcome",
    "LabelRecord",
    "PromptRecord",
    "Variant",
    "VersionRecord",
]


class PromptRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    slug: str
    description: str
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    latest_version: int | None
    labels: dict[str, int]
    """Label name -> version number."""


class VersionRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    prompt: str
    version: int
    messages: list[dict[str, Any]]
    model: str | None
    params: dict[str, Any]
    variables: list[str]
    variables_schema: dict[str, Any] | None
    response_schema: dict[str, Any] | None
    note: str
    created_by: str | None
    created_at: datetime
    content_hash: str
    labels: list[str]


class LabelRecord(msgspec.Struct, frozen=True, kw_only=True):
    prompt: str
    label: str
    version: int
    version_id: str
    updated_at: datetime


class DeleteOutcome(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    deleted: bool
    archived: bool
    """True when logged responses reference the prompt: it is kept, hidden and unservable."""


class Variant(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: int
    weight: float
    version_id: str = ""


class AbTestRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    prompt: str
    name: str
    status: str
    """draft, running or stopped."""
    variants: list[Variant]
    min_samples: int
    winner: str | None
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
