"""Admin: the request log, filtered and paged."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from admin.auth import require_admin
from admin.pagination import Page, decode_cursor, make_page, page_limit
from admin.query_params import parse_bool, parse_datetime, parse_whole_number
from gateway.errors import InvalidRequest, NotFound
from gateway.prompts.rebuilder import RequestRebuilder
from gateway.requestlog.query import LogFilter, RequestLogQuery, row_to_dict
from gateway.runtime import Core

__all__ = ["ResponseController", "parse_log_filter"]

_TEXT_FILTERS = ("prompt", "user", "session", "model")


def parse_log_filter(params: dict[str, str]) -> LogFilter:
    filters = LogFilter()
    for name, value in params.items():
        if name in _TEXT_FILTERS:
            setattr(filters, name, value)
        elif name == "key_id":
            filters.key_id = value
        elif name == "version":
            filters.version = parse_whole_number(name, value)
        elif name.startswith("tag."):
            filters.tags[name[4:].lower()] = value
        elif name == "is_test_run":
            filters.is_test_run = parse_bool(name, value)
        elif name == "status":
            if value in {"ok", "error"}:
                filters.errors_only = value == "error"
            elif value.isascii() and value.isdigit():
                filters.status = parse_whole_number(name, value)
            else:
                raise InvalidRequest(
                    "status must be an HTTP status code, 'ok' or 'error'.", param="status"
                )
        elif name in {"since", "until"}:
            setattr(filters, name, parse_datetime(name, value))
        elif name not in {"limit", "cursor"}:
            raise InvalidRequest(f"Unknown filter '{name}'.", param=name)
    return filters


class ResponseController(Controller):
    path = "/admin/responses"
    tags = ["admin: responses"]
    guards = [require_admin]

    @get("/", summary="List logged requests and responses, newest first")
    async def list_responses(
        self,
        request: Request[Any, Any, Any],
        core: NamedDependency[Core],
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Page[dict[str, Any]]:
        size = page_limit(limit)
        filters = parse_log_filter(dict(request.query_params))
        rows = await RequestLogQuery(core.sessions).list(
            filters, limit=size + 1, before_id=decode_cursor(cursor)
        )
        return make_page([row_to_dict(row) for row in rows], size)

    @get("/{request_id:str}", summary="One logged request and its response")
    async def get_response(
        self,
        request_id: FromPath[str],
        core: NamedDependency[Core],
        request_rebuilder: NamedDependency[RequestRebuilder | None],
    ) -> dict[str, Any]:
        row = await RequestLogQuery(core.sessions).get(request_id)
        if row is None:
            raise NotFound(
                f"No logged request with id '{request_id}'. Rows are written within a second "
                "of the response; try again shortly.",
                param="request_id",
            )
        result = row_to_dict(row)
        if request_rebuilder is not None and row.prompt_version_id is not None:
            # The log keeps the version id and variables; show the request as it was sent.
            result["rendered_request"] = await request_rebuilder.rebuild(
                row.prompt_version_id, row.variables, row.request_body
            )
        return result
