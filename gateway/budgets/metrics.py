"""The budgets' Prometheus metrics, registered in the gateway's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["BudgetMetrics"]


class BudgetMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.checks = Counter(
            "sluice_budget_checks_total",
            "Budgeted requests by outcome: reserved, exceeded, unavailable (503), fail_open.",
            ["outcome"],
            registry=registry,
        )
        self.fail_open = Counter(
            "sluice_budget_fail_open_total",
            "Requests served without a reservation because the budget store was down.",
            registry=registry,
        )
        self.alerts = Counter(
            "sluice_budget_alerts_total",
            "Soft-limit alerts fired (once per budget and window).",
            ["scope", "period"],
            registry=registry,
        )
        self.rebuilds = Counter(
            "sluice_budget_counter_rebuilds_total",
            "Ledger counters rebuilt from the request log (restart, eviction, new window).",
            registry=registry,
        )
        self.store_errors = Counter(
            "sluice_budget_store_errors_total",
            "Budget store (Redis) calls that failed or timed out.",
            ["operation"],
            registry=registry,
        )
        self.pending_settlements = Gauge(
            "sluice_budget_pending_settlements",
            "Settlements waiting for the budget store to come back.",
            registry=registry,
        )
