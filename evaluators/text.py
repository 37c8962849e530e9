"""Built-in string checks: exact_match, contains, starts_with, contains_all, contains_any, regex."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from evaluators.base import (
    NO_EXPECTED,
    EvaluationInput,
    EvaluationResult,
    EvaluatorConfigError,
    check_result,
    error_result,
    off_loop,
    resolve_expected,
)
from evaluators.config import ConfigReader
from evaluators.safe_regex import Pattern, UnsupportedPattern, compile_pattern


@dataclass(frozen=True, slots=True)
class ValueConfig:
    value: str | None
    case_sensitive: bool


@dataclass(frozen=True, slots=True)
class ValuesConfig:
    values: tuple[str, ...]
    case_sensitive: bool


def _value_config(config: Mapping[str, Any]) -> ValueConfig:
    reader = ConfigReader(config, ("value", "case_sensitive"))
    return ValueConfig(reader.optional_str("value"), reader.boolean("case_sensitive", True))


def _values_config(config: Mapping[str, Any]) -> ValuesConfig:
    reader = ConfigReader(config, ("values", "case_sensitive"))
    return ValuesConfig(reader.str_list("values"), reader.boolean("case_sensitive", True))


def _fold(text: str, case_sensitive: bool) -> str:
    # casefold, not lower: "Straße" must match "STRASSE" when case does not matter.
    return text if case_sensitive else text.casefold()


class ExactMatch:
    """The response equals a value, ignoring surrounding whitespace.

    Config:
    - ``value`` (string, optional): the value to match; defaults to the test case's expected output.
    - ``case_sensitive`` (boolean, default true).

    Score 1 or 0. Without a value or an expected output the result is an error.
    """

    key: ClassVar[str] = "exact_match"
    version: ClassVar[str] = "1"
    default_threshold: ClassVar[float] = 1.0
    awaits_io: ClassVar[bool] = False

    def validate_config(self, config: Mapping[str, Any]) -> ValueConfig:
        return _value_config(config)

    async def evaluate(self, config: ValueConfig, data: EvaluationInput) -> EvaluationResult:
        expected = resolve_expected(config.value, data)
        if expected is None:
            return error_result(NO_EXPECTED)
        want = _fold(expected.strip(), config.case_sensitive)
        got = _fold(data.response_text.strip(), config.case_sensitive)
        if want == got:
            return check_result(True)
        # Where the texts part ways is the first thing anyone debugging a mismatch looks for.
        differs_at = next(
            (i for i, (a, b) in enumerate(zip(want, got, strict=False)) if a != b),
            min(len(want), len(got)),
        )
        return check_result(False, {"first_difference_at": differs_at})


class Contains:
    """The response contains a value.

    Config:
    - ``value`` (string, optional): the substring; defaults to the test case's expected output.
    - ``case_sensitive`` (boolean, default true).

    Score 1 or 0.
    """

    key: ClassVar[str] = "contains"
    version: ClassVar[str] = "1"
    default_threshold: ClassVar[float] = 1.0
    awaits_io: ClassVar[bool] = False

    def validate_config(self, config: Mapping[str, Any]) -> ValueConfig:
        return _value_config(config)

    async def evaluate(self, config: ValueConfig, data: EvaluationInput) -> EvaluationResult:
        expected = resolve_expected(config.value, data)
        if expected is None:
            return error_result(NO_EXPECTED)
        found = _fold(expected, config.case_sensitive) in _fold(
            data.response_text, config.case_sensitive
        )
        return check_result(found)


class StartsWith:
    """The response starts with a value, ignoring the response's leading whitespace.

    Config:
    - ``value`` (string, optional): the prefix; defaults to the test case's expected output.
    - ``case_sensitive`` (boolean, default true).

    Score 1 or 0.
    """

    key: ClassVar[str] = "starts_with"
    version: ClassVar[str] = "1"
    default_threshold: ClassVar[float] = 1.0
    awaits_io: ClassVar[bool] = False

    def validate_config(self, config: Mapping[str, Any]) -> ValueConfig:
        return _value_config(config)

    async def evaluate(self, config: ValueConfig, data: EvaluationInput) -> EvaluationResult:
        expected = resolve_expected(config.value, data)
        if expected is None:
            return error_result(NO_EXPECTED)
        # Models often open with a newline or a space; that is not what a prefix check means.
        response = _fold(data.response_text.lstrip(), config.case_sensitive)
        return check_result(response.startswith(_fold(expected, config.case_sensitive)))


class ContainsAll:
    """The response contains every one of several values.

    Config:
    - ``values`` (non-empty array of strings, required).
    - ``case_sensitive`` (boolean, default true).

    Score is the fraction of values found; with the default threshold 1.0 it passes only
    when all are. ``details.missing`` lists the values not found.
    """

    key: ClassVar[str] = "contains_all"
    version: ClassVar[str] = "1"
    default_threshold: ClassVar[float] = 1.0
    awaits_io: ClassVar[bool] = False

    def validate_config(self, config: Mapping[str, Any]) -> ValuesConfig:
        return _values_config(config)

    async def evaluate(self, config: ValuesConfig, data: EvaluationInput) -> EvaluationResult:
        response = _fold(data.response_text, config.case_sensitive)
        missing = [v for v in config.values if _fold(v, config.case_sensitive) not in response]
        score = (len(config.values) - len(missing)) / len(config.values)
        return EvaluationResult(
            score=score,
            passed=score >= self.default_threshold,
            details={"missing": missing, "found": len(config.values) - len(missing)},
        )


class ContainsAny:
    """The response contains at least one of several values.

    Config:
    - ``values`` (non-empty array of strings, required).
    - ``case_sensitive`` (boolean, default true).

    Score 1 or 0; ``details.found`` lists the values found.
    """

    key: ClassVar[str] = "contains_any"
    version: ClassVar[str] = "1"
    default_threshold: ClassVar[float] = 1.0
    awaits_io: ClassVar[bool] = False

    def validate_config(self, config: Mapping[str, Any]) -> ValuesConfig:
        return _values_config(config)

    async def evaluate(self, config: ValuesConfig, data: EvaluationInput) -> EvaluationResult:
        response = _fold(data.response_text, config.case_sensitive)
        found = [v for v in config.values if _fold(v, config.case_sensitive) in response]
        return check_result(bool(found), {"found": found})


REGEX_DEFAULT_MAX_CHARS = 20_000
REGEX_MAX_CHARS_LIMIT = 1_000_000
# RE2 releases the GIL while it matches: above this many characters the search goes to a
# thread, so the event loop keeps serving while it runs and the runner's deadline can fire.
REGEX_THREAD_ABOVE_CHARS = 50_000


@dataclass(frozen=True, slots=True)
class RegexConfig:
    pattern: Pattern
    max_chars: int


class Regex:
    """The response matches a regular expression somewhere (a search, not a full match).

    Config:
    - ``pattern`` (string, required): RE2 syntax (as Python's ``re`` without backreferences,
      lookarounds, atomic groups or possessive quantifiers; ``\\z`` for the end of text),
      compiled once at validation.
    - ``flags`` (string, default ""): any of ``i`` (ignore case), ``m`` (multiline: ``^``/``$``
      at line breaks), ``s`` (dot matches newline).
    - ``max_chars`` (integer, default 20000, at most 1000000): only the first ``max_chars``
      characters of the response are searched.

    Score 1 or 0. RE2 matches in time linear in the text whatever the pattern, so a pattern
    such as ``(a+)+$`` is as safe as any other; a pattern RE2 cannot run is refused at
    validation with the reason.
    """

    key: ClassVar[str] = "regex"
    version: ClassVar[str] = "1"
    default_threshold: ClassVar[float] = 1.0
    awaits_io: ClassVar[bool] = False

    def validate_config(self, config: Mapping[str, Any]) -> RegexConfig:
        reader = ConfigReader(config, ("pattern", "flags", "max_chars"))
        pattern = reader.optional_str("pattern")
        if pattern is None or pattern == "":
            raise EvaluatorConfigError("is required and must be a non-empty string", "pattern")
        flags = reader.optional_str("flags") or ""
        unknown = sorted(set(flags) - set("ims"))
        if unknown:
            raise EvaluatorConfigError(
                f"unknown flag(s) {''.join(unknown)!r}; allowed: i, m, s", "flags"
            )
        max_chars = reader.optional_int("max_chars", minimum=1) or REGEX_DEFAULT_MAX_CHARS
        if max_chars > REGEX_MAX_CHARS_LIMIT:
            raise EvaluatorConfigError(f"must be at most {REGEX_MAX_CHARS_LIMIT}", "max_chars")
        try:
            compiled = compile_pattern(pattern, flags)
        except UnsupportedPattern as exc:
            raise EvaluatorConfigError(str(exc), "pattern") from None
        return RegexConfig(compiled, max_chars)

    async def evaluate(self, config: RegexConfig, data: EvaluationInput) -> EvaluationResult:
        text = data.response_text
        truncated = len(text) > config.max_chars
        if truncated:
            text = text[: config.max_chars]
        if len(text) > REGEX_THREAD_ABOVE_CHARS:
            match = await off_loop(config.pattern.search, text)
        else:
            match = config.pattern.search(text)
        details: dict[str, Any] = {}
        if match is not None:
            details["match"] = match.group(0)[:200]
            details["span"] = [match.start(), match.end()]
        if truncated:
            details["searched_chars"] = config.max_chars
        return check_result(match is not None, details)
