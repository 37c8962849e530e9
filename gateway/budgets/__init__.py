"""Budgets and cost accounting: prices, worst-case reservations in an atomic ledger, settlement
from real usage, counters rebuilt from the request log, soft-limit alerts."""
