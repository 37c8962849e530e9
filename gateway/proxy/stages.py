"""The optional stages a call passes through: prompt resolution, budgets, observers.

The proxy knows these only by their protocols; the prompt registry, the budget ledger and the
evaluation queue implement them, and the proxy plugin fixes them when it builds the proxy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from gateway.proxy.context import CallContext
from gateway.requestlog.entry import LogEntry
from gateway.upstream.routing import Route

__all__ = [
    "BudgetStage",
    "PromptStage",
    "Reservation",
    "ResolvedPrompt",
    "ResponseObserver",
    "Settlement",
    "Usage",
]


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class ResolvedPrompt:
    slug: str
    version: int
    version_id: str
    messages: list[dict[str, Any]]
    """The version's messages, rendered with the call's variables."""
    variables: dict[str, Any]
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    ab_test_id: str | None = None
    ab_variant: str | None = None


class PromptStage(Protocol):
    async def resolve(self, call: CallContext) -> ResolvedPrompt:
        """Resolve `call.prompt` to a rendered version, or raise a 4xx SluiceError."""
        ...


@dataclass(slots=True)
class Reservation:
    request_id: str
    amount_usd: Decimal
    budget_ids: list[str]
    remaining_usd: Decimal | None
    state: Any = None
    """Whatever the ledger needs to settle; opaque to the proxy."""


@dataclass(frozen=True, slots=True)
class Settlement:
    cost_usd: Decimal | None
    remaining_usd: Decimal | None


class BudgetStage(Protocol):
    async def reserve(
        self, call: CallContext, route: Route, body: dict[str, Any], endpoint: str
    ) -> Reservation | None:
        """Reserve the worst-case cost on every budget that applies (may cap `body`'s
        max tokens so the estimate holds), or raise BudgetExceeded/BudgetStoreUnavailable."""
        ...

    async def settle(
        self, reservation: Reservation | None, route: Route, usage: Usage | None
    ) -> Settlement:
        """Settle to the real cost (None usage: the call failed, release it). Idempotent."""
        ...


class ResponseObserver(Protocol):
    def observe(self, entry: LogEntry, call: CallContext, output_text: str | None) -> None:
        """Called after the response is sent; must not block (queue work instead)."""
        ...
