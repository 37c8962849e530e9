"""Admin: evaluations — filtered lists, per-version quality, a response's scores, human
feedback, and the queue's dead letters."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from admin.auth import require_admin
from admin.pagination import Page, decode_cursor, make_page, page_limit
from admin.query_params import parse_bool, parse_datetime, parse_whole_number
from gateway.errors import InvalidRequest, NotFound
from gateway.evaluations.feedback import ManualEvaluation
from gateway.evaluations.query import EvaluationFilter, VersionSummary
from gateway.evaluations.records import CONTEXTS, DeadLetter, EvaluationRecord, ResponseScore
from gateway.evaluations.services import EvaluationServices

__all__ = ["EvaluationController", "ResponseEvaluationController", "parse_evaluation_filter"]

_TEXT = ("request_id", "prompt", "evaluator_key", "evaluator_id", "variant")


class Requeued(msgspec.Struct):
    id: str
    requeued: bool


class SweepReport(msgspec.Struct):
    enqueued: int


def parse_evaluation_filter(
    params: dict[str, str], *, extra: tuple[str, ...] = ()
) -> EvaluationFilter:
    """The filters of GET /admin/evaluations; unknown names are a 400 naming them."""
    filters = EvaluationFilter()
    for name, value in params.items():
        if name in _TEXT:
            setattr(filters, name, value)
        elif name == "version":
            filters.version = parse_whole_number(name, value)
        elif name == "context":
            if value not in CONTEXTS:
                raise InvalidRequest(
                    f"context must be one of {', '.join(CONTEXTS)}.", param="context"
                )
            filters.context = value
        elif name == "passed":
            if value.lower() not in {"true", "false", "1", "0"}:
                raise InvalidRequest("passed must be true or false.", param="passed")
            filters.passed = parse_bool(name, value)
        elif name in {"since", "until"}:
            setattr(filters, name, parse_datetime(name, value))
        elif name not in {"limit", "cursor", *extra}:
            raise InvalidRequest(f"Unknown filter '{name}'.", param=name)
    return filters


class EvaluationController(Controller):
    path = "/admin/evaluations"
    tags = ["admin: evaluations"]
    guards = [require_admin]

    @get(
        "/",
        summary="List evaluations, newest first (filters: request_id, prompt, version, "
        "evaluator_key, evaluator_id, context, passed, variant, since, until)",
    )
    async def list_evaluations(
        self,
        request: Request[Any, Any, Any],
        evaluation_services: NamedDependency[EvaluationServices],
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Page[EvaluationRecord]:
        size = page_limit(limit)
        filters = parse_evaluation_filter(dict(request.query_params))
        rows = await evaluation_services.query.search(
            filters, limit=size + 1, before_id=decode_cursor(cursor)
        )
        return make_page(rows, size)

    @get(
        "/summary",
        summary="Quality per prompt version (and A/B variant with by=variant): overall score "
        "and each evaluator's mean score, pass rate, errors and judge cost",
    )
    async def summary(
        self,
        request: Request[Any, Any, Any],
        evaluation_services: NamedDependency[EvaluationServices],
    ) -> list[VersionSummary]:
        params = dict(request.query_params)
        by = params.get("by")
        if by not in (None, "version", "variant"):
            raise InvalidRequest("by must be 'version' or 'variant'.", param="by")
        params.setdefault("context", "production")
        filters = parse_evaluation_filter(params, extra=("by",))
        return await evaluation_services.query.summary(filters, by_variant=by == "variant")

    @get("/dead-letters", summary="Jobs that failed too often, newest first")
    async def dead_letters(
        self,
        evaluation_services: NamedDependency[EvaluationServices],
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Page[DeadLetter]:
        size = page_limit(limit)
        letters = await evaluation_services.queue.dead_letters(
            limit=size + 1, before=decode_cursor(cursor)
        )
        return make_page(letters, size)

    @post(
        "/dead-letters/{dead_id:str}/requeue",
        status_code=200,
        summary="Send a dead letter back to the queue",
    )
    async def requeue(
        self, dead_id: FromPath[str], evaluation_services: NamedDependency[EvaluationServices]
    ) -> Requeued:
        if not await evaluation_services.queue.requeue(dead_id):
            raise NotFound(f"No dead letter with id '{dead_id}'.", param="dead_id")
        evaluation_services.metrics.enqueued.labels("requeue").inc()
        return Requeued(id=dead_id, requeued=True)

    @post("/sweep", status_code=200, summary="Enqueue unevaluated production responses now")
    async def sweep(self, evaluation_services: NamedDependency[EvaluationServices]) -> SweepReport:
        return SweepReport(enqueued=await evaluation_services.sweeper.sweep())


class ResponseEvaluationController(Controller):
    path = "/admin/responses"
    tags = ["admin: evaluations"]
    guards = [require_admin]

    @get(
        "/{request_id:str}/evaluations",
        summary="A response's evaluations and overall score (weighted mean)",
    )
    async def for_response(
        self, request_id: FromPath[str], evaluation_services: NamedDependency[EvaluationServices]
    ) -> ResponseScore:
        return await evaluation_services.query.for_response(request_id)

    @post(
        "/{request_id:str}/evaluations",
        summary="Record a manual score or a person's feedback (thumbs, a 1-5 rating, a comment)",
    )
    async def add_feedback(
        self,
        request_id: FromPath[str],
        data: JSONBody[ManualEvaluation],
        evaluation_services: NamedDependency[EvaluationServices],
    ) -> EvaluationRecord:
        return await evaluation_services.query.add_manual(request_id, data)
