"""The upstream's `usage` block, read as a claim to check, never as money to trust.

The gateway bills from what the upstream reports, so a buggy or hostile upstream must not be
able to credit a budget or bill nonsense. Each count must be a whole number from 0 to
`MAX_USAGE_TOKENS`:

    prompt_tokens, completion_tokens   a bad one makes the whole block untrusted: the caller
                                       bills its own token count instead (flagged estimated)
    cached_tokens                      bad, or more than prompt_tokens: 0 (no cache discount)
    reasoning_tokens                   bad: ignored; more than completion_tokens: the
                                       completion is billed as the reasoning count
    total_tokens                       not prompt + completion: counted, not billed from

Every problem is reported by reason (negative, not_integer, absurd, inconsistent) for the
`sluice_upstream_usage_rejected_total` metric. A usage that is not an object at all fails the
answer's decoding: that is a 502 `upstream_error`, as for any body that is not a response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from gateway.proxy.stages import Usage

__all__ = ["MAX_USAGE_TOKENS", "UsageCheck", "UsageFields"]

# Per count, per call: ten million is the largest context window any model offers today, and a
# call cannot use more tokens than its context holds. Above it, a count is not a real call.
MAX_USAGE_TOKENS = 10_000_000


@dataclass(frozen=True, slots=True)
class UsageCheck:
    usage: Usage | None
    """What to bill; None when the upstream's counts cannot be trusted at all."""
    problems: tuple[str, ...] = ()
    """One reason per problem found: negative, not_integer, absurd or inconsistent."""


def _count(value: Any) -> tuple[int | None, str | None]:
    """A token count and None, or None and why it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, "not_integer"
    if isinstance(value, float):
        if value != value or abs(value) == float("inf"):
            return None, "absurd"
        if not value.is_integer():
            return None, "not_integer"
        value = int(value)
    if value < 0:
        return None, "negative"
    if value > MAX_USAGE_TOKENS:
        return None, "absurd"
    return value, None


def _detail(details: Any, name: str) -> Any:
    return details.get(name) if isinstance(details, dict) else None


class UsageFields(msgspec.Struct):
    """The fields of `usage` the gateway bills from, typed loosely so that a bad count is a
    problem to report, not a decoding failure."""

    prompt_tokens: Any = 0
    completion_tokens: Any = 0
    total_tokens: Any = None
    prompt_tokens_details: Any = None
    completion_tokens_details: Any = None

    def check(self) -> UsageCheck:
        problems: list[str] = []
        prompt, problem = _count(self.prompt_tokens)
        if problem:
            problems.append(problem)
        completion, problem = _count(self.completion_tokens)
        if problem:
            problems.append(problem)
        if prompt is None or completion is None:
            return UsageCheck(None, tuple(problems))
        billed_completion = completion
        cached = 0
        raw_cached = _detail(self.prompt_tokens_details, "cached_tokens")
        if raw_cached is not None:
            value, problem = _count(raw_cached)
            if problem:
                problems.append(problem)
            elif value is not None and value > prompt:
                problems.append("inconsistent")
            elif value is not None:
                cached = value
        raw_reasoning = _detail(self.completion_tokens_details, "reasoning_tokens")
        if raw_reasoning is not None:
            value, problem = _count(raw_reasoning)
            if problem:
                problems.append(problem)
            elif value is not None and value > completion:
                # Reasoning tokens are billed as output: the larger claim is the bill.
                problems.append("inconsistent")
                billed_completion = value
        if self.total_tokens is not None and self.total_tokens != prompt + completion:
            problems.append("inconsistent")
        return UsageCheck(Usage(prompt, billed_completion, cached), tuple(problems))

    def to_usage(self) -> Usage | None:
        """What to bill (None: the counts cannot be trusted; count the tokens instead)."""
        return self.check().usage
