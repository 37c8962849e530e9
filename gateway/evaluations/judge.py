"""The LLM judge's line to a model: Sluice's own upstream client, budgets and request log.

A judge call is routed like any gateway model, reserved and settled through the same budget
stage as client traffic (so it is priced, counts against the global budget, and can be capped
with a `tag` budget on `evaluation=llm_judge`), and logged as test traffic: it never counts as
production and is never itself evaluated. Its log row's `judged_request` tag names the request
being judged. Failures a retry may fix (429, 5xx, timeouts, the budget store down) raise
`RetryableEvaluationError`; the rest raise `JudgeCallError` and become an error result.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

import msgspec

from evaluators import JudgeReply, RetryableEvaluationError
from gateway.db.base import utcnow
from gateway.errors import BudgetExceeded, BudgetStoreUnavailable, SluiceError
from gateway.ids import new_id
from gateway.proxy.context import CallContext
from gateway.proxy.service import Stages
from gateway.proxy.sse import UsageFields
from gateway.proxy.stages import Reservation, Usage
from gateway.requestlog.buffer import RequestLogBuffer
from gateway.requestlog.entry import LogEntry
from gateway.upstream.provider import Provider
from gateway.upstream.routing import ModelRouter, Route

__all__ = ["JUDGE_TAG", "GatewayJudgeClient", "JudgeCallError", "judged_request"]

JUDGE_TAG = ("evaluation", "llm_judge")
judged_request: ContextVar[str | None] = ContextVar("sluice_judged_request", default=None)
"""The request id being evaluated; set by the processor, read into the judge call's log row."""


class JudgeCallError(Exception):
    """A judge call that another attempt would not fix (a 400, an unrouted model, no budget)."""


class _Message(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    message: _Message


class _Completion(msgspec.Struct):
    choices: list[_Choice] = []
    model: str | None = None
    usage: UsageFields | None = None


_decode = msgspec.json.Decoder(_Completion).decode


class GatewayJudgeClient:
    def __init__(
        self,
        *,
        router: ModelRouter,
        provider: Provider,
        log_buffer: RequestLogBuffer,
        stages: Stages,
    ) -> None:
        self._router = router
        self._provider = provider
        self._log = log_buffer
        self._stages = stages

    async def complete(
        self, model: str, messages: list[dict[str, Any]], *, response_format: dict[str, Any]
    ) -> JudgeReply:
        call = _judge_call()
        try:
            route = self._router.resolve(model)
        except SluiceError as exc:
            raise JudgeCallError(f"judge model: {exc.message}") from None
        body: dict[str, Any] = {
            "model": route.model,
            "messages": messages,
            "response_format": response_format,
        }
        entry = LogEntry(
            id=call.request_id,
            request_id=call.request_id,
            created_at=call.created_at,
            endpoint="chat.completions",
            model_requested=model,
            upstream=route.upstream.name,
            tags=call.tags,
            is_test_run=True,
            request_body=body,
        )
        reservation = await self._reserve(call, entry, route, body)
        try:
            reply = await self._provider.complete(
                route.upstream, "/chat/completions", msgspec.json.encode(body)
            )
        except SluiceError as exc:
            await self._finish(call, entry, route, reservation, None, exc.status_code, exc.code)
            raise RetryableEvaluationError(f"judge call failed: {exc.message}") from None
        if reply.status != 200:
            excerpt = reply.body[:300].decode("utf-8", "replace")
            await self._finish(call, entry, route, reservation, None, reply.status, "upstream")
            message = f"judge model answered HTTP {reply.status}: {excerpt}"
            if reply.status == 429 or reply.status >= 500:
                raise RetryableEvaluationError(message)
            raise JudgeCallError(message)
        try:
            parsed = _decode(reply.body)
            text = parsed.choices[0].message.content or ""
        except (msgspec.DecodeError, msgspec.ValidationError, IndexError):
            await self._finish(call, entry, route, reservation, None, 502, "upstream_error")
            raise RetryableEvaluationError("judge model answered with a malformed body") from None
        usage = parsed.usage.to_usage() if parsed.usage is not None else None
        entry.model_served = parsed.model
        entry.response_body = msgspec.json.decode(reply.body)
        cost = await self._finish(call, entry, route, reservation, usage, 200, None)
        return JudgeReply(
            text=text,
            cost_usd=cost if cost is not None else Decimal(0),
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
        )

    async def _reserve(
        self, call: CallContext, entry: LogEntry, route: Route, body: dict[str, Any]
    ) -> Reservation | None:
        budgets = self._stages.budgets
        if budgets is None:
            return None
        try:
            return await budgets.reserve(call, route, body, "chat.completions")
        except BudgetExceeded as exc:
            self._log_failure(call, entry, exc)
            raise JudgeCallError(f"no budget left for the judge: {exc.message}") from None
        except BudgetStoreUnavailable as exc:
            self._log_failure(call, entry, exc)
            raise RetryableEvaluationError(f"judge not called: {exc.message}") from None
        except SluiceError as exc:
            self._log_failure(call, entry, exc)
            raise JudgeCallError(f"judge not called: {exc.message}") from None

    async def _finish(
        self,
        call: CallContext,
        entry: LogEntry,
        route: Route,
        reservation: Reservation | None,
        usage: Usage | None,
        status: int,
        error_code: str | None,
    ) -> Decimal | None:
        cost = None
        budgets = self._stages.budgets
        if budgets is not None:
            settlement = await budgets.settle(reservation, route, usage)
            cost = settlement.cost_usd
        if usage is not None:
            entry.prompt_tokens = usage.prompt_tokens
            entry.completion_tokens = usage.completion_tokens
            entry.total_tokens = usage.total_tokens
            entry.cached_tokens = usage.cached_tokens
        entry.cost_usd = cost
        entry.status_code = status
        entry.error_code = error_code
        entry.latency_ms = (time.perf_counter() - call.started) * 1000
        self._log.add(entry)
        return cost

    def _log_failure(self, call: CallContext, entry: LogEntry, exc: SluiceError) -> None:
        entry.status_code = exc.status_code
        entry.error_code = exc.code
        entry.latency_ms = (time.perf_counter() - call.started) * 1000
        self._log.add(entry)


def _judge_call() -> CallContext:
    request_id = new_id()
    tags = {JUDGE_TAG[0]: JUDGE_TAG[1]}
    judged = judged_request.get()
    if judged is not None:
        tags["judged_request"] = judged[:200]
    return CallContext(
        request_id=request_id,
        started=time.perf_counter(),
        created_at=utcnow(),
        tags=tags,
        test_run=True,
        request_id_generated=True,
    )
