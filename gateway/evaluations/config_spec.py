"""What an evaluator config may contain, as the admin API and test suites send it.

Shapes are msgspec Structs (Litestar turns their failures into 400s naming the field:
a threshold of 1.5 never reaches a service). What a type cannot say — the evaluator's own
config check, dependencies, cycles — is checked by `configs.EvaluatorConfigService` against
the owner's whole set of configs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "CopyTarget",
    "EvaluatorConfigPatch",
    "EvaluatorConfigSpec",
    "RunModeName",
    "UnitInterval",
]

UnitInterval = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
RunModeName = Literal["inline", "queued"]
EvaluatorKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
"""A config id, or the evaluator key of a config of the same owner."""
Weight = Annotated[float, msgspec.Meta(ge=0.0, le=1_000_000.0)]


class EvaluatorConfigSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    evaluator_key: EvaluatorKey
    config: dict[str, Any] = {}
    weight: Weight = 1.0
    threshold: UnitInterval | None = None
    """None: the evaluator's default, 1.0 for pass/fail checks and 0.5 for graded scores."""
    run_mode: RunModeName | None = None
    """None: `queued` for evaluators that call out (llm_judge, semantic_similarity), else
    `inline`."""
    sampling_rate: UnitInterval = 1.0
    depends_on: Annotated[list[Reference], msgspec.Meta(max_length=20)] = []
    enabled: bool = True


class EvaluatorConfigPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Fields to change; absent fields stay. `threshold: null` goes back to the default."""

    config: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    weight: Weight | msgspec.UnsetType = msgspec.UNSET
    threshold: UnitInterval | msgspec.UnsetType | None = msgspec.UNSET
    run_mode: RunModeName | msgspec.UnsetType = msgspec.UNSET
    sampling_rate: UnitInterval | msgspec.UnsetType = msgspec.UNSET
    depends_on: Annotated[list[Reference], msgspec.Meta(max_length=20)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    enabled: bool | msgspec.UnsetType = msgspec.UNSET


class CopyTarget(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Where a copy goes: `{"prompt", "version"}` or `{"test_case_id"}`."""

    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    version: Annotated[int, msgspec.Meta(ge=1)] | None = None
    test_case_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
