"""The string checks: exact_match, contains, starts_with, contains_all, contains_any, regex."""

from __future__ import annotations

from typing import Any

import pytest

from evaluators.base import EvaluationInput, EvaluationResult, Evaluator, EvaluatorConfigError
from evaluators.text import Contains, ContainsAll, ContainsAny, ExactMatch, Regex, StartsWith


def given(response: str, expected: str | None = None) -> EvaluationInput:
    return EvaluationInput(
        request={"model": "gpt-4o-mini"}, response_text=response, expected=expected
    )


async def run(
    evaluator: Evaluator[Any], config: dict[str, Any], data: EvaluationInput
) -> EvaluationResult:
    return await evaluator.evaluate(evaluator.validate_config(config), data)


async def test_exact_match_strips_whitespace_and_defaults_to_expected() -> None:
    result = await run(ExactMatch(), {}, given("  Paris\n", expected="Paris"))
    assert (result.score, result.passed, result.error) == (1.0, True, None)


async def test_exact_match_config_value_wins_over_expected() -> None:
    result = await run(ExactMatch(), {"value": "Lyon"}, given("Paris", expected="Paris"))
    assert (result.score, result.passed) == (0.0, False)
    assert result.details == {"first_difference_at": 0}


async def test_exact_match_is_case_sensitive_by_default() -> None:
    assert not (await run(ExactMatch(), {}, given("paris", "Paris"))).passed
    assert (await run(ExactMatch(), {"case_sensitive": False}, given("PARIS", "paris"))).passed


async def test_exact_match_case_insensitive_uses_casefold() -> None:
    result = await run(ExactMatch(), {"case_sensitive": False}, given("STRASSE", "straße"))
    assert result.passed


async def test_exact_match_reports_where_a_prefix_ends() -> None:
    result = await run(ExactMatch(), {}, given("Paris, France", "Paris"))
    assert result.details == {"first_difference_at": 5}


async def test_exact_match_without_expected_is_an_error_not_a_crash() -> None:
    result = await run(ExactMatch(), {}, given("Paris"))
    assert result.error is not None and result.error.startswith("no expected value")
    assert (result.score, result.passed) == (0.0, False)


async def test_contains() -> None:
    assert (await run(Contains(), {"value": "world"}, given("hello world"))).passed
    assert not (await run(Contains(), {"value": "World"}, given("hello world"))).passed
    insensitive = {"value": "World", "case_sensitive": False}
    assert (await run(Contains(), insensitive, given("hello world"))).passed
    assert (await run(Contains(), {}, given("the answer is 42.", expected="42"))).passed
    assert (await run(Contains(), {}, given("x"))).error is not None


async def test_starts_with_ignores_leading_whitespace_of_the_response() -> None:
    assert (await run(StartsWith(), {"value": "Yes"}, given("\n  Yes, it is."))).passed
    assert not (await run(StartsWith(), {"value": "Yes"}, given("No. Yes."))).passed
    assert (await run(StartsWith(), {"value": "yes", "case_sensitive": False}, given("YES"))).passed


async def test_contains_all_scores_the_fraction_found_and_passes_only_at_one() -> None:
    config = {"values": ["red", "green", "blue", "white"]}
    result = await run(ContainsAll(), config, given("red, green and blue"))
    assert result.score == 0.75
    assert not result.passed
    assert result.details == {"missing": ["white"], "found": 3}
    full = await run(ContainsAll(), config, given("red green blue white"))
    assert (full.score, full.passed) == (1.0, True)


async def test_contains_all_case_insensitive() -> None:
    result = await run(ContainsAll(), {"values": ["A", "b"], "case_sensitive": False}, given("a B"))
    assert result.score == 1.0


async def test_contains_any() -> None:
    result = await run(ContainsAny(), {"values": ["cat", "dog"]}, given("a dog barks"))
    assert (result.score, result.details) == (1.0, {"found": ["dog"]})
    none = await run(ContainsAny(), {"values": ["cat", "dog"]}, given("a bird sings"))
    assert (none.score, none.passed, none.details) == (0.0, False, {"found": []})


@pytest.mark.parametrize(
    ("config", "field", "fragment"),
    [
        ({"values": []}, "values", "must not be empty"),
        ({}, "values", "is required"),
        ({"values": "red"}, "values", "expected an array of strings, got a string"),
        ({"values": ["red", 3]}, "values", "item 1 must be a non-empty string, got a number"),
        ({"values": ["a"], "case_sensitive": "yes"}, "case_sensitive", "expected true or false"),
        ({"values": ["a"], "vales": ["b"]}, "vales", "did you mean 'values'?"),
    ],
)
def test_values_config_errors(config: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(EvaluatorConfigError) as caught:
        ContainsAll().validate_config(config)
    assert caught.value.field == field
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"{field}: ")


def test_value_config_rejects_non_string_value() -> None:
    with pytest.raises(EvaluatorConfigError, match="value: expected a string, got a number"):
        ExactMatch().validate_config({"value": 42})


def test_config_must_be_an_object() -> None:
    with pytest.raises(EvaluatorConfigError, match="config must be an object, got an array"):
        ExactMatch().validate_config(["value"])  # type: ignore[arg-type]


async def test_regex_searches_anywhere() -> None:
    result = await run(Regex(), {"pattern": r"\d{3}-\d{4}"}, given("call 555-1234 now"))
    assert result.passed
    assert result.details == {"match": "555-1234", "span": [5, 13]}
    assert not (await run(Regex(), {"pattern": r"^\d+$"}, given("12a"))).passed


@pytest.mark.parametrize(
    ("flags", "text", "matches"),
    [
        ("", "HELLO", False),
        ("i", "HELLO", True),
        ("", "first\nhello", False),
        ("m", "first\nhello", True),
        ("m", "first\nHELLO", False),  # case still matters without i
        ("im", "first\nHELLO", True),
    ],
)
async def test_regex_flags_i_and_m(flags: str, text: str, matches: bool) -> None:
    result = await run(Regex(), {"pattern": "^hello", "flags": flags}, given(text))
    assert result.passed is matches


async def test_regex_flag_s_lets_dot_cross_lines() -> None:
    assert not (await run(Regex(), {"pattern": "a.b"}, given("a\nb"))).passed
    assert (await run(Regex(), {"pattern": "a.b", "flags": "s"}, given("a\nb"))).passed


async def test_regex_searches_only_the_first_max_chars() -> None:
    text = "x" * 50 + "needle"
    capped = await run(Regex(), {"pattern": "needle", "max_chars": 50}, given(text))
    assert not capped.passed
    assert capped.details == {"searched_chars": 50}
    assert (await run(Regex(), {"pattern": "needle", "max_chars": 56}, given(text))).passed


def test_regex_compiles_once_at_validation() -> None:
    config = Regex().validate_config({"pattern": "ab+", "flags": "i"})
    assert config.pattern is Regex().validate_config({"pattern": "ab+", "flags": "i"}).pattern
    match = config.pattern.search("xABB")
    assert match is not None and match.group(0) == "ABB"


@pytest.mark.parametrize(
    ("config", "field", "fragment"),
    [
        ({"pattern": "(unclosed"}, "pattern", "not a valid regular expression: missing )"),
        ({"pattern": ""}, "pattern", "is required"),
        ({}, "pattern", "is required"),
        ({"pattern": "a", "flags": "ix"}, "flags", "unknown flag(s) 'x'; allowed: i, m, s"),
        ({"pattern": r"(a)\1"}, "pattern", "backreferences such as \\1 are not supported"),
        ({"pattern": "a(?=b)"}, "pattern", "lookahead (?=...) is not supported"),
        ({"pattern": "(?<!a)b"}, "pattern", "lookbehind (?<=...) / (?<!...) is not supported"),
        ({"pattern": "(?>a+)+"}, "pattern", "atomic groups (?>...) are not needed"),
        ({"pattern": "a{1001}"}, "pattern", "repetition counts go up to 1000"),
        ({"pattern": "a", "max_chars": 0}, "max_chars", "must be at least 1"),
        ({"pattern": "a", "max_chars": 10**7}, "max_chars", "must be at most 1000000"),
    ],
)
def test_regex_config_errors(config: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(EvaluatorConfigError) as caught:
        Regex().validate_config(config)
    assert caught.value.field == field
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    "pattern", [r"(.*a){25}x", r"(a|aa)+$", r"(a+)+$", r"(\w+\s?)*$", r"(x+x+)+y"]
)
async def test_regex_backtracking_shapes_are_accepted_and_answer(pattern: str) -> None:
    # On Python's re each of these runs for minutes on this text; on RE2 it is linear.
    result = await run(Regex(), {"pattern": pattern}, given("a" * 40 + "!"))
    assert result.error is None
    assert result.passed is (pattern == r"(\w+\s?)*$")  # that one matches the empty tail
