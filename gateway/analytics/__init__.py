"""Analytics over the request log and the evaluations: per prompt version and day, per model,
and the alerts list. Read-only; every query is bounded by a time window and served by an index.
"""
