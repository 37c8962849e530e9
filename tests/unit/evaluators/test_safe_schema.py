"""safe_schema: what a user schema may contain, and a validator that never fetches or backtracks."""

from __future__ import annotations

from typing import Any

import pytest

from evaluators import EvaluationInput
from evaluators.safe_schema import (
    MAX_SCHEMA_BYTES,
    MAX_SCHEMA_DEPTH,
    SchemaProblem,
    check_schema,
    validator_for,
)
from evaluators.structure import JsonSchema

HOSTILE_KEY = "a" * 40 + "!"


def _deep(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"items": schema}
    return schema


def _messages(schema: Any, instance: Any, **kwargs: Any) -> list[str]:
    return sorted(e.message for e in validator_for(schema, **kwargs).iter_errors(instance))


def test_depth_bound_is_inclusive() -> None:
    check_schema(_deep(MAX_SCHEMA_DEPTH))
    with pytest.raises(SchemaProblem, match=f"nested more than {MAX_SCHEMA_DEPTH} levels deep"):
        check_schema(_deep(MAX_SCHEMA_DEPTH + 1))


def test_size_bound() -> None:
    check_schema({"const": "v" * (MAX_SCHEMA_BYTES - 100)})
    with pytest.raises(SchemaProblem, match=f"at most {MAX_SCHEMA_BYTES} bytes"):
        check_schema({"const": "v" * MAX_SCHEMA_BYTES})


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"$ref": "http://127.0.0.1:9/x"}, '$["$ref"]'),
        ({"$ref": "other.json#/a"}, '$["$ref"]'),
        ({"$defs": {"a": {"$dynamicRef": "https://x.org/m#m"}}}, '$["$defs"].a["$dynamicRef"]'),
        ({"anyOf": [{"$ref": "file:///etc/passwd"}]}, '$.anyOf[0]["$ref"]'),
    ],
)
def test_refs_outside_the_schema_are_refused(schema: dict[str, Any], where: str) -> None:
    with pytest.raises(SchemaProblem) as caught:
        check_schema(schema)
    assert str(caught.value).startswith(f"{where}: ")
    assert "points outside the schema" in str(caught.value)


def test_local_refs_resolve_under_an_id_without_any_fetch() -> None:
    schema = {
        "$id": "http://127.0.0.1:9/s.json",
        "$ref": "#/$defs/n",
        "$defs": {"n": {"type": "integer"}},
    }
    check_schema(schema)
    assert _messages(schema, "x") == ["'x' is not of type 'integer'"]


async def test_a_stored_remote_ref_is_an_error_result_not_a_fetch() -> None:
    # A response_schema stored before these checks existed: port 9 would refuse a connection,
    # which would be a different error than the refusal to resolve it at all.
    data = EvaluationInput(
        request={}, response_text="3", response_schema={"$ref": "http://127.0.0.1:9/x"}
    )
    result = await JsonSchema().evaluate(JsonSchema().validate_config({}), data)
    assert result.error is not None
    assert "points outside the schema" in result.error


def test_pattern_keywords_match_with_re2() -> None:
    schema = {
        "type": "object",
        "properties": {"p": {"pattern": "^(a+)+$"}},
        "patternProperties": {"^(a|aa)+$": {"type": "integer"}},
        "additionalProperties": False,
    }
    check_schema(schema)
    assert _messages(schema, {"p": HOSTILE_KEY, "aaaa": "s", HOSTILE_KEY: 1}) == [
        f"'{HOSTILE_KEY}' does not match '^(a+)+$'",
        f"'{HOSTILE_KEY}' does not match any of the regexes: '^(a|aa)+$'",
        "'s' is not of type 'integer'",
    ]
    assert _messages({"additionalProperties": False, "properties": {"a": {}}}, {"b": 1}) == [
        "Additional properties are not allowed ('b' was unexpected)"
    ]


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"pattern": r"(a)\1"}, "$.pattern: the pattern '(a)\\\\1' is not supported by the RE2"),
        ({"patternProperties": {"(?<=a)b": {}}}, "lookbehind"),
        (
            {
                "patternProperties": {"^x": {}},
                "properties": {"y": {"unevaluatedProperties": False}},
            },
            "unevaluatedProperties cannot be combined with patternProperties",
        ),
        ({"type": "strin"}, "not a valid JSON Schema: $.type: "),
        ("object", "must be an object or a boolean"),
    ],
)
def test_refusals_say_why(schema: Any, fragment: str) -> None:
    with pytest.raises(SchemaProblem) as caught:
        check_schema(schema)
    assert fragment in str(caught.value)


def test_format_regex_is_checked_with_re2() -> None:
    schema = {"type": "string", "format": "regex"}
    assert _messages(schema, r"(a)\1") == []  # formats are annotations unless checked
    assert _messages(schema, r"(a)\1", check_formats=True) == [r"'(a)\\1' is not a 'regex'"]
    assert _messages(schema, "(a+)+$", check_formats=True) == []
