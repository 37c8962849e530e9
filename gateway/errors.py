"""The gateway's one error tree, rendered everywhere in the OpenAI error shape.

    SluiceError                      {"error": {"message", "type", "param", "code"}}
    ├── InvalidRequest               400 invalid_request
    │   ├── MissingVariable          400 missing_variable
    │   └── InvalidVariables         400 invalid_variables
    ├── InvalidApiKey                401 invalid_api_key
    ├── AdminUnauthorized            401 invalid_admin_token
    ├── BudgetExceeded               402 budget_exceeded
    ├── NotFound                     404 not_found
    │   ├── ModelNotFound            404 model_not_found
    │   ├── PromptNotFound           404 prompt_not_found
    │   └── VersionNotFound          404 version_not_found
    ├── Conflict                     409 conflict
    ├── RequestTooLarge              413 request_too_large
    ├── RateLimited                  429 rate_limited
    ├── UpstreamError                502 upstream_error
    ├── BudgetStoreUnavailable       503 budget_store_unavailable
    └── UpstreamTimeout              504 upstream_timeout

Code below the HTTP layer raises these; `render_error` turns any of them into a response body.
Messages must be safe to show: they never contain a key, a secret or a stack trace.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

__all__ = [
    "AdminUnauthorized",
    "BudgetExceeded",
    "BudgetStoreUnavailable",
    "Conflict",
    "InvalidApiKey",
    "InvalidRequest",
    "InvalidVariables",
    "MissingVariable",
    "ModelNotFound",
    "NotFound",
    "PromptNotFound",
    "RateLimited",
    "RequestTooLarge",
    "SluiceError",
    "UpstreamError",
    "UpstreamTimeout",
    "VersionNotFound",
    "error_body",
]


class SluiceError(Exception):
    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    type: ClassVar[str] = "server_error"

    def __init__(
        self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        return error_body(self.message, self.type, self.code, self.param)


def error_body(message: str, type_: str, code: str, param: str | None = None) -> bytes:
    return msgspec.json.encode(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    )


class InvalidRequest(SluiceError):
    status_code = 400
    code = "invalid_request"
    type = "invalid_request_error"


class MissingVariable(InvalidRequest):
    code = "missing_variable"


class InvalidVariables(InvalidRequest):
    code = "invalid_variables"


class InvalidApiKey(SluiceError):
    status_code = 401
    code = "invalid_api_key"
    type = "authentication_error"


class AdminUnauthorized(InvalidApiKey):
    code = "invalid_admin_token"


class BudgetExceeded(SluiceError):
    status_code = 402
    code = "budget_exceeded"
    type = "insufficient_quota"


class NotFound(SluiceError):
    status_code = 404
    code = "not_found"
    type = "invalid_request_error"


class ModelNotFound(NotFound):
    code = "model_not_found"


class PromptNotFound(NotFound):
    code = "prompt_not_found"


class VersionNotFound(NotFound):
    code = "version_not_found"


class Conflict(SluiceError):
    status_code = 409
    code = "conflict"
    type = "invalid_request_error"


class RequestTooLarge(SluiceError):
    status_code = 413
    code = "request_too_large"
    type = "invalid_request_error"


class RateLimited(SluiceError):
    status_code = 429
    code = "rate_limited"
    type = "rate_limit_error"


class UpstreamError(SluiceError):
    status_code = 502
    code = "upstream_error"
    type = "api_error"


class BudgetStoreUnavailable(SluiceError):
    status_code = 503
    code = "budget_store_unavailable"
    type = "api_error"


class UpstreamTimeout(SluiceError):
    status_code = 504
    code = "upstream_timeout"
    type = "api_error"


def describe_validation_error(
    exc: msgspec.ValidationError | msgspec.DecodeError,
) -> tuple[str, Any]:
    """Turn msgspec's `... - at `$.field`` message into (message, param)."""
    text = str(exc)
    param = None
    if " - at `$." in text:
        text, _, path = text.partition(" - at `$.")
        param = path.rstrip("`")
        text = f"{text} at '{param}'"
    return text, param
