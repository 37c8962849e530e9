"""The alerts list: quality degradations of scheduled runs, budget soft limits reached, and
evaluation jobs in the dead-letter list, newest first, in one shape."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from gateway.budgets.alerts import AlertSink
from gateway.evaluations.queue import EvaluationQueue
from gateway.testsuites.alerts import AlertStore

__all__ = ["AlertFeed", "AlertItem"]


class AlertItem(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: str
    """degradation, test_run_failed, budget_soft_limit or evaluation_dead_lettered."""
    message: str
    created_at: datetime
    prompt: str | None = None
    details: dict[str, Any] = {}


class AlertFeed:
    def __init__(
        self,
        quality: AlertStore,
        budgets: AlertSink | None,
        queue: EvaluationQueue | None,
    ) -> None:
        self._quality = quality
        self._budgets = budgets
        self._queue = queue

    async def list(self, *, limit: int, kind: str | None = None) -> list[AlertItem]:
        items: list[AlertItem] = []
        if kind in (None, "degradation", "test_run_failed"):
            for alert in await self._quality.list(limit=limit):
                if kind is None or alert.kind == kind:
                    items.append(
                        AlertItem(
                            id=alert.id,
                            kind=alert.kind,
                            message=alert.message,
                            created_at=alert.created_at,
                            prompt=alert.prompt,
                            details={
                                "schedule_id": alert.schedule_id,
                                "run_id": alert.run_id,
                                **alert.details,
                            },
                        )
                    )
        if self._budgets is not None and kind in (None, "budget_soft_limit"):
            for budget in await self._budgets.list(limit=limit):
                items.append(
                    AlertItem(
                        id=budget.id,
                        kind="budget_soft_limit",
                        message=(
                            f"Budget {budget.budget_id} passed its soft limit of "
                            f"${budget.soft_limit_usd:f} in {budget.window}: ${budget.spent_usd:f} "
                            f"spent of ${budget.limit_usd:f}."
                        ),
                        created_at=budget.fired_at,
                        details={
                            "budget_id": budget.budget_id,
                            "window": budget.window,
                            "spent_usd": float(budget.spent_usd),
                            "soft_limit_usd": float(budget.soft_limit_usd),
                            "limit_usd": float(budget.limit_usd),
                        },
                    )
                )
        if self._queue is not None and kind in (None, "evaluation_dead_lettered"):
            for dead in await self._queue.dead_letters(limit=limit, before=None):
                items.append(
                    AlertItem(
                        id=dead.id,
                        kind="evaluation_dead_lettered",
                        message=(
                            f"Evaluation of response {dead.job.request_log_id} failed "
                            f"{dead.failures} times and was dead-lettered: {dead.error}"
                        ),
                        created_at=dead.failed_at,
                        details={
                            "request_log_id": dead.job.request_log_id,
                            "failures": dead.failures,
                        },
                    )
                )
        items.sort(key=lambda item: item.created_at, reverse=True)
        return items[:limit]
