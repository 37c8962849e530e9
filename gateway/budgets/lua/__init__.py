"""The ledger's Lua scripts, run by `gateway.budgets.redis_ledger` (shipped as package data)."""
