"""USD amounts as exact integer ticks of 1e-10 USD, the scale of `request_logs.cost_usd`.

The ledger adds and compares integers (Redis HINCRBY, Lua numbers), so a counter equals the sum
of the logged costs to the last digit. Prices are USD per million tokens: one token at a price
of P costs P * 10^4 ticks.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

__all__ = [
    "MAX_LIMIT_USD",
    "TICKS_PER_USD",
    "from_ticks",
    "price_ticks",
    "to_ticks",
    "tokens_cost",
]

TICKS_PER_USD = 10**10
TICKS_PER_TOKEN_AT_ONE_USD_PER_MILLION = Decimal(TICKS_PER_USD) / Decimal(10**6)
# int64 counters hold 9.2e18 ticks; this leaves room for a month of overshoot past any limit.
MAX_LIMIT_USD = Decimal(100_000_000)
_ONE_TICK = Decimal(1).scaleb(-10)


def to_ticks(usd: Decimal) -> int:
    """Whole ticks in `usd`, rounded half up (limits and prices are given to at most 1e-10)."""
    return int((usd * TICKS_PER_USD).to_integral_value(ROUND_HALF_UP))


def from_ticks(ticks: int) -> Decimal:
    """`ticks` as USD with exactly ten decimals (never in exponent notation once formatted)."""
    return (Decimal(ticks) * _ONE_TICK).quantize(_ONE_TICK)


def price_ticks(usd_per_million: Decimal) -> Decimal:
    """The price of one token in ticks (may be fractional: rounding happens per request)."""
    return usd_per_million * TICKS_PER_TOKEN_AT_ONE_USD_PER_MILLION


def tokens_cost(amount: Decimal, *, worst_case: bool = False) -> int:
    """A request's summed token cost in whole ticks: rounded up for reservations, half up for
    the settled cost, so a reservation never falls short of the cost it covers. Never
    negative: no count or price, however it came, turns a cost into a credit."""
    return max(int(amount.to_integral_value(ROUND_CEILING if worst_case else ROUND_HALF_UP)), 0)
