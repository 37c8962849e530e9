"""One request-log entry as the request path builds it; a row of `request_logs` once flushed."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from gateway.requestlog.storable import storable_row

__all__ = ["LogEntry"]


class LogEntry(msgspec.Struct, kw_only=True):
    id: str
    request_id: str
    created_at: datetime
    endpoint: str
    key_id: str | None = None
    model_requested: str | None = None
    model_served: str | None = None
    upstream: str | None = None
    upstream_response_id: str | None = None
    """The id the upstream gave its answer (a Responses API id finds its upstream by it)."""
    status_code: int = 0
    error_code: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    usage_estimated: bool = False
    cost_usd: Decimal | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    streamed: bool = False
    client_disconnected: bool = False
    user: str | None = None
    session: str | None = None
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    is_test_run: bool = False
    prompt_slug: str | None = None
    prompt_version: int | None = None
    prompt_version_id: str | None = None
    ab_test_id: str | None = None
    ab_variant: str | None = None
    variables: dict[str, Any] | None = None
    request_body: Any | None = None
    response_body: Any | None = None

    def as_row(self) -> dict[str, Any]:
        """The row to store: client and upstream strings fitted to what the columns hold."""
        return storable_row(msgspec.structs.asdict(self))
