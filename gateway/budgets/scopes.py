"""What a budget is, in memory, and which budgets apply to a call.

`BudgetRecord` is the immutable form of a `budgets` row with its limits in ticks. `BudgetIndex`
answers "which budgets apply to this call" with a few dict lookups: global ones always, then
those of the call's key, prompt slug, user and each `name=value` tag.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from gateway.budgets.money import to_ticks
from gateway.budgets.windows import Period
from gateway.proxy.context import CallContext

__all__ = ["TAG_NAME", "BudgetIndex", "BudgetRecord", "Scope", "parse_tag"]

# The tag names the proxy accepts (gateway/proxy/context.py): header names are lower-cased.
TAG_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


class Scope(StrEnum):
    GLOBAL = "global"
    KEY = "key"
    PROMPT = "prompt"
    USER = "user"
    TAG = "tag"


def parse_tag(value: str) -> tuple[str, str] | None:
    """`name=value` as (lower-cased name, value), or None when it is not one."""
    name, sep, tag_value = value.partition("=")
    name = name.strip().lower()
    if not sep or not TAG_NAME.fullmatch(name) or not tag_value:
        return None
    return name, tag_value


@dataclass(frozen=True, slots=True)
class BudgetRecord:
    id: str
    scope: Scope
    scope_value: str | None
    period: Period
    limit_usd: Decimal
    soft_limit_pct: float | None
    created_at: datetime
    updated_at: datetime
    limit_ticks: int = field(init=False)
    soft_ticks: int | None = field(init=False)
    """The spend at which the soft-limit alert fires, or None."""

    def __post_init__(self) -> None:
        limit = to_ticks(self.limit_usd)
        object.__setattr__(self, "limit_ticks", limit)
        soft = None
        if self.soft_limit_pct is not None:
            soft = to_ticks(self.limit_usd * Decimal(str(self.soft_limit_pct)) / 100)
        object.__setattr__(self, "soft_ticks", soft)

    @property
    def label(self) -> str:
        """How messages name the budget: `'key abc123, daily'`, `'global, monthly'`."""
        if self.scope_value is None:
            return f"'{self.scope}, {self.period}'"
        return f"'{self.scope} {self.scope_value}, {self.period}'"


@dataclass(frozen=True, slots=True)
class BudgetIndex:
    global_: tuple[BudgetRecord, ...] = ()
    by_scope: dict[Scope, dict[str, tuple[BudgetRecord, ...]]] = field(default_factory=dict)
    count: int = 0

    @classmethod
    def build(cls, records: Iterable[BudgetRecord]) -> BudgetIndex:
        global_: list[BudgetRecord] = []
        grouped: dict[Scope, defaultdict[str, list[BudgetRecord]]] = {}
        count = 0
        for record in sorted(records, key=lambda r: r.id):
            count += 1
            if record.scope is Scope.GLOBAL or record.scope_value is None:
                global_.append(record)
                continue
            grouped.setdefault(record.scope, defaultdict(list))[record.scope_value].append(record)
        by_scope = {
            scope: {value: tuple(items) for value, items in values.items()}
            for scope, values in grouped.items()
        }
        return cls(tuple(global_), by_scope, count)

    def matching(self, call: CallContext) -> list[BudgetRecord]:
        """Every budget that applies to `call`, each once, in a stable order."""
        found = list(self.global_)
        if not self.by_scope:
            return found
        for scope, value in (
            (Scope.KEY, call.key_id),
            (Scope.PROMPT, call.prompt.slug),
            (Scope.USER, call.user),
        ):
            values = self.by_scope.get(scope)
            if values and value is not None:
                found.extend(values.get(value, ()))
        tags = self.by_scope.get(Scope.TAG)
        if tags and call.tags:
            for name, value in call.tags.items():
                found.extend(tags.get(f"{name}={value}", ()))
        return found
