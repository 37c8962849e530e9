"""The boundary between Litestar and the gateway: error rendering and proxy results."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import Empty, Receive, Send

from gateway.errors import SluiceError, error_body
from gateway.input_bounds import check_admin_value, check_identifier, check_int, decode_json
from gateway.proxy.service import ProxyResult

__all__ = [
    "EXCEPTION_HANDLERS",
    "SluiceRequest",
    "check_parameters",
    "json_response",
    "to_asgi",
]

log = logging.getLogger("sluice.http")

_HTTP_CODES = {
    400: ("invalid_request", "invalid_request_error"),
    401: ("invalid_api_key", "authentication_error"),
    403: ("forbidden", "permission_error"),
    404: ("not_found", "invalid_request_error"),
    405: ("method_not_allowed", "invalid_request_error"),
    409: ("conflict", "invalid_request_error"),
    413: ("request_too_large", "invalid_request_error"),
    415: ("unsupported_media_type", "invalid_request_error"),
    429: ("rate_limited", "rate_limit_error"),
}


class _ClosingStream(ASGIStreamingResponse):
    """A stream that always closes its iterator, even when the client goes away mid-way."""

    async def send_body(self, send: Send, receive: Receive) -> None:
        try:
            await super().send_body(send, receive)
        finally:
            aclose = getattr(self.iterator, "aclose", None)
            if aclose is not None:
                await aclose()


class SluiceRequest(Request[Any, Any, Any]):
    """Litestar's request, with every JSON body (each admin payload) decoded through the
    gateway's bounds: nesting depth, 32-bit integers, no control characters in text."""

    async def json(self) -> Any:
        if self._json is Empty and self._connection_state.json is Empty:
            value = decode_json(await self.body() or b"null")
            check_admin_value(value)
            self._json = self._connection_state.json = value
        return await super().json()


async def check_parameters(request: Request[Any, Any, Any]) -> None:
    """Before any handler: query and path parameters hold no control character, and integer
    path parameters fit the database's INTEGER (a version number of 10**20 is a 400)."""
    for name, value in request.query_params.items():
        check_identifier(name, value)
    for name, param in request.path_params.items():
        if isinstance(param, str):
            check_identifier(name, param)
        elif isinstance(param, int) and not isinstance(param, bool):
            check_int(name, param)


def json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> ASGIResponse:
    return ASGIResponse(
        body=body, status_code=status, headers=headers, media_type="application/json"
    )


def to_asgi(result: ProxyResult) -> ASGIResponse:
    if result.stream is None:
        return json_response(result.status, result.body, result.headers)
    stream: AsyncIterator[bytes] = result.stream
    return _ClosingStream(
        iterator=stream,
        headers=result.headers,
        media_type="text/event-stream",
        status_code=result.status,
    )


def _error_response(
    status: int, body: bytes, headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def _sluice_error(_: Request[Any, Any, Any], exc: SluiceError) -> Response[bytes]:
    return _error_response(exc.status_code, exc.body(), exc.headers)


# What a client that took a wrong turn under /v1 is told this gateway serves (CONTRACT.md §1).
OPENAI_ENDPOINTS = (
    "POST /v1/chat/completions, POST /v1/responses, GET/DELETE /v1/responses/{id}, "
    "GET /v1/responses/{id}/input_items, POST /v1/responses/{id}/cancel, POST /v1/completions, "
    "POST /v1/embeddings, POST /v1/moderations, GET /v1/models"
)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    code, type_ = _HTTP_CODES.get(status, ("internal_error", "server_error"))
    message = exc.detail
    param = None
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list) and exc.extra:
        first = exc.extra[0]
        if isinstance(first, dict):
            param = first.get("key")
            detail = first.get("message", "")
            message = f"Invalid value for '{param}': {detail}" if param else str(detail)
    elif status == 413:
        message = "The request body is larger than this gateway accepts (SLUICE_MAX_BODY_BYTES)."
    elif status == 404 and request.url.path.startswith("/v1/"):
        message = (
            f"Sluice does not serve {request.url.path[:200]}. Its OpenAI endpoints are: "
            f"{OPENAI_ENDPOINTS}."
        )
    elif status == 404:
        message = "No such endpoint. See /schema for the endpoints this gateway serves."
    headers = dict(exc.headers or {})
    return _error_response(status, error_body(message, type_, code, param), headers)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error(
        "unhandled error on %s %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
        exc_info=exc,
    )
    return _error_response(
        500,
        error_body(
            "The gateway failed unexpectedly; the error has been logged.",
            "server_error",
            "internal_error",
        ),
    )


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    SluiceError: _sluice_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
