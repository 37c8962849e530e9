"""The shape checks: json_valid, json_schema and length."""

from __future__ import annotations

from typing import Any

import pytest

from evaluators.base import EvaluationInput, EvaluationResult, Evaluator, EvaluatorConfigError
from evaluators.structure import JsonSchema, JsonValid, Length, json_path, parse_json

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "integer"}},
                "required": ["name"],
            },
        },
    },
    "required": ["name"],
    "additionalProperties": False,
}


def given(response: str, **fields: Any) -> EvaluationInput:
    return EvaluationInput(request={"model": "gpt-4o"}, response_text=response, **fields)


async def run(
    evaluator: Evaluator[Any], config: dict[str, Any], data: EvaluationInput
) -> EvaluationResult:
    return await evaluator.evaluate(evaluator.validate_config(config), data)


@pytest.mark.parametrize("text", ['{"a": 1}', "[1, 2]", '"just a string"', "42", "null", " true "])
async def test_json_valid_accepts_any_json_document(text: str) -> None:
    result = await run(JsonValid(), {}, given(text))
    assert (result.score, result.passed) == (1.0, True)


async def test_json_valid_rejects_text_with_the_decoder_reason() -> None:
    result = await run(JsonValid(), {}, given("Sure! Here is the JSON: {}"))
    assert (result.score, result.passed, result.error) == (0.0, False, None)
    assert result.details == {
        "reason": "response is not JSON: Expecting value: line 1 column 1 (char 0)"
    }


async def test_json_valid_rejects_nan_which_strict_json_does_not_allow() -> None:
    result = await run(JsonValid(), {}, given('{"x": NaN}'))
    assert result.details == {"reason": "response is not JSON: NaN is not valid JSON"}


async def test_json_valid_trusts_a_parsed_response_json() -> None:
    result = await run(JsonValid(), {}, given("not parsed here", response_json={"a": 1}))
    assert result.passed


def test_json_valid_takes_no_config() -> None:
    with pytest.raises(EvaluatorConfigError, match="this evaluator takes no config"):
        JsonValid().validate_config({"strict": True})


def test_parse_json() -> None:
    assert parse_json('{"a": [1]}') == ({"a": [1]}, None)
    assert parse_json("{") == (
        None,
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    )


def test_json_path_formats_keys_and_indexes() -> None:
    assert json_path([]) == "$"
    assert json_path(["items", 2, "name"]) == "$.items[2].name"
    assert json_path(["odd key", 0, "_ok1"]) == '$["odd key"][0]._ok1'


async def test_json_schema_passes_a_valid_document() -> None:
    data = given('{"name": "Ada", "items": [{"name": 1}]}')
    result = await run(JsonSchema(), {"schema": PERSON}, data)
    assert (result.score, result.passed, result.details) == (1.0, True, {})


async def test_json_schema_lists_every_error_with_its_path() -> None:
    text = '{"items": [{"name": 1}, {"name": 2}, {"name": "x"}, {}], "extra": true}'
    result = await run(JsonSchema(), {"schema": PERSON}, given(text))
    assert (result.score, result.passed) == (0.0, False)
    assert result.details == {
        "errors": [
            "$: 'name' is a required property",
            "$: Additional properties are not allowed ('extra' was unexpected)",
            "$.items[2].name: 'x' is not of type 'integer'",
            "$.items[3]: 'name' is a required property",
        ],
        "error_count": 4,
    }


async def test_json_schema_orders_array_indexes_numerically() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    text = "[" + ", ".join(['"x"'] * 12) + "]"
    result = await run(JsonSchema(), {"schema": schema}, given(text))
    errors = result.details["errors"]
    assert errors[:3] == [
        "$[0]: 'x' is not of type 'integer'",
        "$[1]: 'x' is not of type 'integer'",
        "$[2]: 'x' is not of type 'integer'",
    ]
    assert errors[10] == "$[10]: 'x' is not of type 'integer'"


async def test_json_schema_caps_the_listed_errors_but_counts_them_all() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    result = await run(JsonSchema(), {"schema": schema}, given(str(["x"] * 150).replace("'", '"')))
    assert len(result.details["errors"]) == 100
    assert result.details["error_count"] == 150


async def test_json_schema_non_json_response_scores_zero_with_reason() -> None:
    result = await run(JsonSchema(), {"schema": PERSON}, given("name: Ada"))
    assert (result.score, result.passed, result.error) == (0.0, False, None)
    assert result.details["reason"].startswith("response is not JSON: Expecting value")


async def test_json_schema_defaults_to_the_prompt_versions_response_schema() -> None:
    data = given('{"name": 3}', response_schema=PERSON)
    result = await run(JsonSchema(), {}, data)
    assert result.details["errors"] == ["$.name: 3 is not of type 'string'"]


async def test_json_schema_without_any_schema_is_an_error() -> None:
    result = await run(JsonSchema(), {}, given("{}"))
    assert result.error == (
        "no schema: set config.schema or give the prompt version a response_schema"
    )


async def test_json_schema_broken_response_schema_is_an_error_naming_the_problem() -> None:
    data = given('{"a": 1}', response_schema={"type": "object", "minProperties": "two"})
    result = await run(JsonSchema(), {}, data)
    assert result.error is not None
    assert result.error.startswith(
        "response_schema is not usable: not a valid JSON Schema: $.minProperties: "
    )


async def test_json_schema_formats_are_annotations_unless_checked() -> None:
    schema = {"type": "string", "format": "date"}
    assert (await run(JsonSchema(), {"schema": schema}, given('"not a date"'))).passed
    checked = await run(
        JsonSchema(), {"schema": schema, "check_formats": True}, given('"not a date"')
    )
    assert checked.details["errors"] == ["$: 'not a date' is not a 'date'"]


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": "strin"}, "not a valid JSON Schema: $.type: 'strin' is not valid under any"),
        ({"minLength": -1}, "not a valid JSON Schema: $.minLength: -1 is less than the minimum"),
        ("object", "expected a JSON Schema object, got a string"),
        ({"const": float("nan")}, "must be plain JSON"),
    ],
)
def test_json_schema_checks_the_schema_at_validation(schema: Any, fragment: str) -> None:
    with pytest.raises(EvaluatorConfigError) as caught:
        JsonSchema().validate_config({"schema": schema})
    assert caught.value.field == "schema"
    assert fragment in caught.value.message


async def test_json_schema_validator_is_independent_of_the_callers_dict() -> None:
    schema: dict[str, Any] = {"type": "object", "required": ["a"]}
    config = JsonSchema().validate_config({"schema": schema})
    schema["required"] = ["b"]
    result = await JsonSchema().evaluate(config, given('{"a": 1}'))
    assert result.passed


async def test_length_in_chars_counts_code_points_inclusively() -> None:
    assert (await run(Length(), {"min": 2, "max": 5}, given("héllo"))).passed
    too_long = await run(Length(), {"max": 4}, given("héllo"))
    assert (too_long.passed, too_long.details) == (
        False,
        {"length": 5, "unit": "chars", "min": None, "max": 4},
    )
    assert not (await run(Length(), {"min": 6}, given("héllo"))).passed


async def test_length_in_tokens_uses_the_injected_counter_with_the_request_model() -> None:
    seen: list[tuple[str, str]] = []

    def count(model: str, text: str) -> int:
        seen.append((model, text))
        return len(text.split())

    result = await run(Length(count), {"max": 3, "unit": "tokens"}, given("one two three four"))
    assert (result.passed, result.details["length"]) == (False, 4)
    assert seen == [("gpt-4o", "one two three four")]


async def test_length_in_tokens_defaults_to_the_gateway_counter() -> None:
    result = await run(Length(), {"min": 1, "max": 10, "unit": "tokens"}, given("Hello, world!"))
    # o200k_base: "Hello" "," " world" "!"
    assert (result.passed, result.details["length"]) == (True, 4)


@pytest.mark.parametrize(
    ("config", "field", "fragment"),
    [
        ({}, "min", "set min, max or both"),
        ({"min": 5, "max": 2}, "min", "min (5) is greater than max (2)"),
        ({"min": -1}, "min", "must be at least 0"),
        ({"max": 2.5}, "max", "expected an integer, got a number"),
        ({"max": True}, "max", "expected an integer, got a boolean"),
        ({"max": 3, "unit": "words"}, "unit", "must be 'chars' or 'tokens', got 'words'"),
    ],
)
def test_length_config_errors(config: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(EvaluatorConfigError) as caught:
        Length().validate_config(config)
    assert caught.value.field == field
    assert fragment in caught.value.message
