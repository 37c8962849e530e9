"""What the admin API and suite files send: test cases, run requests, schedules, as Structs.

Shapes and bounds are checked by msgspec (a 400 naming the field); what needs the database
(a prompt, a version, a route for the model) is checked by the services.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from gateway.evaluations.config_spec import EvaluatorConfigSpec

__all__ = [
    "CaseSelection",
    "RunRequest",
    "ScheduleCreate",
    "SchedulePatch",
    "TestCasePatch",
    "TestCaseSpec",
]

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Model = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Concurrency = Annotated[int, msgspec.Meta(ge=1, le=64)]
Message = dict[str, Any]
Messages = Annotated[list[Message], msgspec.Meta(max_length=200)]
Evaluators = Annotated[list[EvaluatorConfigSpec], msgspec.Meta(max_length=50)]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=20)]
Share = Annotated[float, msgspec.Meta(gt=0.0, le=1.0)]


class TestCaseSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A case as created (POST) or imported (one JSONL line / CSV row)."""

    name: Name
    variables: dict[str, Any] = {}
    messages: Messages = []
    """Sent after the version's rendered messages, e.g. the user's turn."""
    expected_output: str | None = None
    tags: Tags = []
    evaluators: Evaluators = []


class TestCasePatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Fields to change; absent fields stay. Evaluators change through /admin/evaluators."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    variables: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    messages: Messages | msgspec.UnsetType = msgspec.UNSET
    expected_output: str | msgspec.UnsetType | None = msgspec.UNSET
    tags: Tags | msgspec.UnsetType = msgspec.UNSET


class CaseSelection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """A subset of the suite: cases with these ids, or with any of these tags (or both)."""

    ids: Annotated[list[str], msgspec.Meta(max_length=10_000)] = []
    tags: Tags = []

    @property
    def everything(self) -> bool:
        return not self.ids and not self.tags


class RunRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    prompt: Slug
    version: Annotated[int, msgspec.Meta(ge=1)] | None = None
    label: Label | None = None
    model_override: Model | None = None
    tests: CaseSelection | None = None
    concurrency: Concurrency = 4
    budget_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None


class ScheduleCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    prompt: Slug
    cron: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    """Five fields, UTC: `0 3 * * *` is every night at 03:00 UTC."""
    version: Annotated[int, msgspec.Meta(ge=1)] | None = None
    label: Label | None = None
    model_override: Model | None = None
    tests: CaseSelection | None = None
    concurrency: Concurrency = 4
    budget_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
    enabled: bool = True
    max_score_drop: Share | None = None
    """Alert when the mean score falls by more than this share (default 0.1, i.e. 10%)."""


class SchedulePatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    cron: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    version: Annotated[int, msgspec.Meta(ge=1)] | msgspec.UnsetType | None = msgspec.UNSET
    label: Label | msgspec.UnsetType | None = msgspec.UNSET
    model_override: Model | msgspec.UnsetType | None = msgspec.UNSET
    tests: CaseSelection | msgspec.UnsetType | None = msgspec.UNSET
    concurrency: Concurrency | msgspec.UnsetType = msgspec.UNSET
    budget_id: str | msgspec.UnsetType | None = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    max_score_drop: Share | msgspec.UnsetType = msgspec.UNSET
