"""The facts of one logged response, and the `EvaluationInput` an evaluator sees for it.

Both the inline path (a `LogEntry` just written, with the output text in hand) and the worker
(a `request_logs` row) reduce to `ResponseFacts`, so one function builds the evaluator's input.
The rendered request is rebuilt the way the proxy built it: the version's messages rendered
with the logged variables, then the client's messages; the version's model and params win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from evaluators import EvaluationInput
from gateway.db.models import RequestLog
from gateway.errors import SluiceError
from gateway.evaluations.plans import VersionInfo
from gateway.proxy.responses_api import RESPONSES
from gateway.proxy.stages import ResolvedPrompt
from gateway.requestlog.entry import LogEntry
from gateway.requestlog.outputs import output_text_of

__all__ = ["ResponseFacts", "build_input", "output_text_of"]


@dataclass(frozen=True, slots=True)
class ResponseFacts:
    log_id: str
    request_id: str
    created_at: datetime
    is_test_run: bool
    status_code: int
    prompt_slug: str | None
    prompt_version: int | None
    prompt_version_id: str | None
    ab_test_id: str | None
    ab_variant: str | None
    variables: dict[str, Any] | None
    request_body: Any | None
    output_text: str | None
    """None when the response is unknown (not logged, or not a chat completion)."""
    latency_ms: float | None
    cost_usd: Decimal | None
    prompt_tokens: int | None
    completion_tokens: int | None

    @property
    def is_production(self) -> bool:
        return (
            not self.is_test_run
            and self.prompt_version_id is not None
            and 200 <= self.status_code < 300
        )

    @classmethod
    def from_entry(cls, entry: LogEntry, output_text: str | None) -> ResponseFacts:
        return cls(
            log_id=entry.id,
            request_id=entry.request_id,
            created_at=entry.created_at,
            is_test_run=entry.is_test_run,
            status_code=entry.status_code,
            prompt_slug=entry.prompt_slug,
            prompt_version=entry.prompt_version,
            prompt_version_id=entry.prompt_version_id,
            ab_test_id=entry.ab_test_id,
            ab_variant=entry.ab_variant,
            variables=entry.variables,
            request_body=entry.request_body,
            output_text=output_text,
            latency_ms=entry.latency_ms,
            cost_usd=entry.cost_usd,
            prompt_tokens=entry.prompt_tokens,
            completion_tokens=entry.completion_tokens,
        )

    @classmethod
    def from_row(cls, row: RequestLog) -> ResponseFacts:
        return cls(
            log_id=row.id,
            request_id=row.request_id,
            created_at=row.created_at,
            is_test_run=row.is_test_run,
            status_code=row.status_code,
            prompt_slug=row.prompt_slug,
            prompt_version=row.prompt_version,
            prompt_version_id=row.prompt_version_id,
            ab_test_id=row.ab_test_id,
            ab_variant=row.ab_variant,
            variables=row.variables,
            request_body=row.request_body,
            output_text=output_text_of(row.response_body),
            latency_ms=row.latency_ms,
            cost_usd=row.cost_usd,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
        )


def _rendered_request(facts: ResponseFacts, version: VersionInfo | None) -> dict[str, Any]:
    body = dict(facts.request_body) if isinstance(facts.request_body, dict) else {}
    if version is None:
        return body
    try:
        rendered = version.compiled.render(facts.variables or {})
    except SluiceError:
        rendered = []  # the call succeeded, so this cannot happen short of a code change
    if "input" in body and "messages" not in body:  # a Responses API call, rebuilt its way
        resolved = ResolvedPrompt(
            slug=facts.prompt_slug or "",
            version=facts.prompt_version or 0,
            version_id=facts.prompt_version_id or "",
            messages=rendered,
            variables=facts.variables or {},
            model=version.compiled.model,
            params=dict(version.compiled.params),
        )
        RESPONSES.apply_prompt(body, resolved)
        return body
    body["messages"] = rendered + list(body.get("messages") or [])
    if version.compiled.model:
        body["model"] = version.compiled.model
    body.update(version.compiled.params)
    return body


def _parse_json(text: str) -> Any | None:
    # Prose fails on its first character, so trying costs about a microsecond.
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return None


def build_input(
    facts: ResponseFacts, version: VersionInfo | None, *, expected: str | None = None
) -> EvaluationInput:
    text = facts.output_text or ""
    return EvaluationInput(
        request=_rendered_request(facts, version),
        response_text=text,
        response_json=_parse_json(text),
        variables=facts.variables or {},
        expected=expected,
        latency_ms=facts.latency_ms,
        cost_usd=facts.cost_usd,
        prompt_tokens=facts.prompt_tokens,
        completion_tokens=facts.completion_tokens,
        response_schema=version.response_schema if version is not None else None,
    )
