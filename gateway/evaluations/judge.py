"""The LLM judge's line to a model: the proxy's internal entry point, like any test traffic.

A judge call goes through `ProxyService.internal_chat`, so it is routed like any gateway model,
reserved and settled through the same budget stage as client traffic (priced, counted against
the global budget, and cappable with a `tag` budget on `evaluation=llm_judge`), and logged as
test traffic: it never counts as production and is never itself evaluated. Its log row's
`judged_request` tag names the request being judged. Failures a retry may fix (429, 5xx,
timeouts, the budget store down) raise `RetryableEvaluationError`; the rest raise
`JudgeCallError` and become an error result.
"""

from __future__ import annotations

from contextvars import ContextVar
from decimal import Decimal
from typing import Any

import msgspec

from evaluators import JudgeReply, RetryableEvaluationError
from gateway.db.base import utcnow
from gateway.dependencies import Started
from gateway.errors import BudgetExceeded, BudgetStoreUnavailable, ModelNotFound, SluiceError
from gateway.keys.service import KeyInfo
from gateway.proxy.service import ProxyService
from gateway.proxy.sse import UsageFields

__all__ = ["JUDGE_KEY", "JUDGE_TAG", "GatewayJudgeClient", "JudgeCallError", "judged_request"]

JUDGE_TAG = ("evaluation", "llm_judge")
JUDGE_KEY = KeyInfo(
    id="sluice-llm-judge", name="sluice LLM judge (internal)", prefix="", created_at=utcnow()
)
"""The identity judge calls are logged under: no key row, never accepted from outside."""
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


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class GatewayJudgeClient:
    def __init__(self, proxy: Started[ProxyService]) -> None:
        self._proxy = proxy

    async def complete(
        self, model: str, messages: list[dict[str, Any]], *, response_format: dict[str, Any]
    ) -> JudgeReply:
        proxy = self._proxy.require("the LLM judge")
        body = {"model": model, "messages": messages, "response_format": response_format}
        try:
            result = await proxy.internal_chat(
                msgspec.json.encode(body), caller=JUDGE_KEY, headers=_judge_headers()
            )
        except BudgetExceeded as exc:
            raise JudgeCallError(f"no budget left for the judge: {exc.message}") from None
        except BudgetStoreUnavailable as exc:
            raise RetryableEvaluationError(f"judge not called: {exc.message}") from None
        except ModelNotFound as exc:
            raise JudgeCallError(f"judge model: {exc.message}") from None
        except SluiceError as exc:
            if _retryable(exc.status_code):
                raise RetryableEvaluationError(f"judge call failed: {exc.message}") from None
            raise JudgeCallError(f"judge not called: {exc.message}") from None
        if result.status != 200:
            excerpt = result.body[:300].decode("utf-8", "replace")
            message = f"judge model answered HTTP {result.status}: {excerpt}"
            if _retryable(result.status):
                raise RetryableEvaluationError(message)
            raise JudgeCallError(message)
        try:
            parsed = _decode(result.body)
            text = parsed.choices[0].message.content or ""
        except (msgspec.DecodeError, msgspec.ValidationError, IndexError):
            raise RetryableEvaluationError("judge model answered with a malformed body") from None
        usage = parsed.usage.to_usage() if parsed.usage is not None else None
        cost = result.headers.get("x-sluice-cost-usd")
        return JudgeReply(
            text=text,
            cost_usd=Decimal(cost) if cost else Decimal(0),
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
        )


def _judge_headers() -> list[tuple[bytes, bytes]]:
    headers = [(b"x-sluice-tag-" + JUDGE_TAG[0].encode(), JUDGE_TAG[1].encode())]
    judged = judged_request.get()
    if judged is not None:
        headers.append((b"x-sluice-tag-judged_request", judged[:200].encode()))
    return headers
