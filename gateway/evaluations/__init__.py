"""Evaluations in the gateway: evaluator configs, stored scores, the job queue and its workers.

The scoring itself is the pure `evaluators` library; this package attaches it to prompt
versions (`configs`), runs it right after a response is logged (`observer`, inline specs) or
in workers (`queue`, `redis_queue`, `worker`, queued specs), stores results idempotently
(`store`), finds responses whose evaluation was lost (`sweep`), and gives LLM judges the
gateway's own upstream client (`judge`). `plugin` wires it all into the app.
"""
