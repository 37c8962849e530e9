"""What a reservation carries from reserve to settle, and how a refusal is worded."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gateway.budgets.ledger import CounterRef
from gateway.budgets.money import from_ticks
from gateway.budgets.pricing import ModelPrice
from gateway.budgets.scopes import BudgetRecord
from gateway.budgets.windows import Window

__all__ = ["Held", "counter_ref", "exceeded_message", "usd"]


@dataclass(frozen=True, slots=True)
class Held:
    """A reservation as the ledger needs it to settle (the proxy holds it, opaque)."""

    reservation_id: str
    price: ModelPrice
    budgets: tuple[BudgetRecord, ...]
    windows: tuple[Window, ...]
    refs: list[CounterRef]
    fail_open: bool = False
    amount: int = 0
    remaining: tuple[int, ...] = ()
    """Room left on each budget once the hold was made."""

    def remaining_after(self, cost: int) -> Decimal | None:
        """The least room left once settled, as of the hold (other requests may move it)."""
        if not self.remaining:
            return None
        return from_ticks(max(min(self.remaining) + self.amount - cost, 0))


def counter_ref(budget: BudgetRecord, window: Window) -> CounterRef:
    return CounterRef(
        f"{budget.id}:{window.key}", budget.limit_ticks, budget.soft_ticks, window.expire_at
    )


def usd(ticks: int) -> str:
    return f"{from_ticks(ticks).normalize():f}"


def exceeded_message(budget: BudgetRecord, window: Window, left: int, cost: int) -> str:
    if window.end is None:
        resets = f"It does not reset: raise limit_usd with PATCH /admin/budgets/{budget.id}."
    else:
        resets = f"It resets at {window.end.strftime('%Y-%m-%dT%H:%M:%SZ')}."
    span = "in total" if window.end is None else f"for {window.key}"
    return (
        f"Budget {budget.label} (id {budget.id}) has ${usd(max(left, 0))} left of "
        f"${budget.limit_usd.normalize():f} {span}; this request could cost up to "
        f"${usd(cost)}. {resets}"
    )
