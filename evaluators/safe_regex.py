"""Compiling regular expressions that come from users, on an engine that cannot backtrack.

Python's ``re`` backtracks: ``(a+)+$``, ``(a|aa)+$`` or ``(.*a){25}x`` on a 40-character
reply runs for minutes, holding the GIL the whole time, so one evaluator could freeze the
gateway's event loop (health checks and SIGTERM included). No syntactic heuristic catches
every such shape. RE2 (the ``google-re2`` package) matches in time linear in the text for
any pattern, and releases the GIL while it does, which makes the question moot: every
user-supplied pattern (the ``regex`` evaluator's, a JSON Schema's ``pattern`` and
``patternProperties``) is compiled here and nowhere else.

The price is RE2's syntax: no backreferences (``\\1``), no lookarounds (``(?=``, ``(?!``,
``(?<=``, ``(?<!``), no atomic groups or possessive quantifiers (not needed: nothing
backtracks), ``\\z`` instead of ``\\Z``, and repetition counts up to 1000. Such patterns are
refused when the config is created, with a message saying why.
"""

from __future__ import annotations

import functools
from typing import Protocol, cast

import re2

__all__ = ["MAX_PATTERN_CHARS", "Match", "Pattern", "UnsupportedPattern", "compile_pattern"]

MAX_PATTERN_CHARS = 10_000
# RE2's default budget for a compiled program (8 MiB) is plenty for any hand-written pattern;
# stating it keeps `(a{1000}){1000}` a refusal at creation rather than a surprise later.
_MAX_MEM = 8 << 20
_FLAGS = frozenset("ims")


class Match(Protocol):
    def group(self, index: int = 0) -> str: ...

    def start(self) -> int: ...

    def end(self) -> int: ...


class Pattern(Protocol):
    """A compiled RE2 pattern (positions in characters, as with ``re``)."""

    def search(self, text: str) -> Match | None: ...


_HINTS = (
    ("invalid escape sequence: \\1", "backreferences such as \\1 are not supported"),
    ("invalid escape sequence: \\2", "backreferences such as \\2 are not supported"),
    ("invalid perl operator: (?=", "lookahead (?=...) is not supported"),
    ("invalid perl operator: (?!", "negative lookahead (?!...) is not supported"),
    ("invalid perl operator: (?<", "lookbehind (?<=...) / (?<!...) is not supported"),
    ("invalid perl operator: (?>", "atomic groups (?>...) are not needed and not supported"),
    ("invalid escape sequence: \\Z", "write \\z for the end of the text"),
    ("bad repetition operator: *+", "possessive quantifiers are not needed and not supported"),
    ("bad repetition operator: ++", "possessive quantifiers are not needed and not supported"),
    ("invalid repetition size", "repetition counts go up to 1000"),
    ("pattern too large", "the compiled pattern is too large"),
)


class UnsupportedPattern(ValueError):
    """A pattern RE2 cannot run; the message says why, for a person to fix it."""


def compile_pattern(pattern: str, flags: str = "") -> Pattern:
    """``pattern`` compiled by RE2, with ``flags`` (any of ``i``, ``m``, ``s``) applied.

    Raises UnsupportedPattern for a pattern RE2 refuses or that is longer than
    MAX_PATTERN_CHARS. Compiled patterns are cached: schemas and configs repeat.
    """
    unknown = sorted(set(flags) - _FLAGS)
    if unknown:
        raise UnsupportedPattern(f"unknown flag(s) {''.join(unknown)!r}; allowed: i, m, s")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise UnsupportedPattern(f"is longer than {MAX_PATTERN_CHARS} characters")
    return _compiled(pattern, "".join(sorted(set(flags))))


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str, flags: str) -> Pattern:
    options = re2.Options()
    options.log_errors = False  # a refusal is reported to the caller, not to stderr
    options.max_mem = _MAX_MEM
    # Inline flags mean what they mean in Python: i ignores case, m makes ^/$ match at line
    # breaks, s lets . match a newline.
    source = f"(?{flags}){pattern}" if flags else pattern
    try:
        return cast(Pattern, re2.compile(source, options))
    except re2.error as exc:
        raise UnsupportedPattern(_explain(exc)) from None


def _explain(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else exc
    detail = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    for needle, hint in _HINTS:
        if needle in detail:
            return f"not supported by the RE2 engine ({detail}): {hint}"
    return f"not a valid regular expression: {detail} (RE2 syntax)"
