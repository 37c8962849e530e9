"""A person's verdict on a response: a manual score, thumbs, a 1-5 rating, a comment.

Stored as an evaluation in context `manual` (no config, so there may be many per response).
The score is the explicit one if given, else the rating mapped onto 0..1 ((r - 1) / 4), else
thumbs (up 1, down 0); a comment alone has no score. `passed` is explicit, else score >= 0.5.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from gateway.db.base import utcnow
from gateway.db.models import RequestLog
from gateway.errors import InvalidRequest
from gateway.ids import new_id

__all__ = ["ManualEvaluation", "manual_row"]

PASS_MARK = 0.5


class ManualEvaluation(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    score: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] | None = None
    passed: bool | None = None
    thumbs: Literal["up", "down"] | None = None
    rating: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None
    comment: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None
    author: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    """Who gave it (a name or an email); free-form."""
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_.-]{1,64}$")] | None = None
    """What was judged, e.g. `tone`; default `manual` for a score, `feedback` otherwise."""


def _score(feedback: ManualEvaluation) -> float | None:
    if feedback.score is not None:
        return feedback.score
    if feedback.rating is not None:
        return (feedback.rating - 1) / 4
    if feedback.thumbs is not None:
        return 1.0 if feedback.thumbs == "up" else 0.0
    return None


def manual_row(row: RequestLog, feedback: ManualEvaluation) -> dict[str, Any]:
    """The evaluation row recording `feedback` on the logged response `row`."""
    if all(
        value is None
        for value in (
            feedback.score,
            feedback.passed,
            feedback.thumbs,
            feedback.rating,
            feedback.comment,
        )
    ):
        raise InvalidRequest(
            "Give at least one of score (0..1), passed, thumbs ('up'/'down'), rating (1-5) "
            "or comment.",
            param="score",
        )
    score = _score(feedback)
    passed = feedback.passed
    if passed is None and score is not None:
        passed = score >= PASS_MARK
    details = {
        name: value
        for name, value in (
            ("thumbs", feedback.thumbs),
            ("rating", feedback.rating),
            ("comment", feedback.comment),
        )
        if value is not None
    }
    explicit = feedback.score is not None or feedback.passed is not None
    return {
        "id": new_id(),
        "request_log_id": row.id,
        "request_id": row.request_id,
        "evaluator_config_id": None,
        "context": "manual",
        "test_run_id": None,
        "prompt_slug": row.prompt_slug,
        "prompt_version": row.prompt_version,
        "prompt_version_id": row.prompt_version_id,
        "ab_test_id": row.ab_test_id,
        "ab_variant": row.ab_variant,
        "evaluator_key": feedback.name or ("manual" if explicit else "feedback"),
        "evaluator_version": "1",
        "config": {},
        "weight": 1.0,
        "threshold": PASS_MARK,
        "score": score,
        "passed": passed,
        "skipped": False,
        "error": None,
        "details": details,
        "duration_ms": None,
        "cost_usd": None,
        "author": feedback.author,
        "created_at": utcnow(),
    }
