"""Built-in checks on the response's shape: json_valid, json_schema and length."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from evaluators.base import (
    EvaluationInput,
    EvaluationResult,
    EvaluatorConfigError,
    check_result,
    error_result,
)
from evaluators.config import ConfigReader, json_type_name

NO_CONFIG: Mapping[str, Any] = {}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str) -> tuple[Any, str | None]:
    """(value, None) when ``text`` is one JSON document, else (None, a readable reason).

    Python's json accepts NaN and Infinity; strict JSON does not, and neither does a
    client that will read this response.
    """
    try:
        return json.loads(text, parse_constant=_reject_constant), None
    except ValueError as exc:  # JSONDecodeError is a ValueError
        return None, str(exc)


def _response_value(data: EvaluationInput) -> tuple[Any, str | None]:
    if data.response_json is not None:
        return data.response_json, None
    return parse_json(data.response_text)


class JsonValid:
    """The response is a single valid JSON document (any type: object, array, string, ...).

    Config: none.

    Score 1 or 0; on failure ``details.reason`` says why, e.g.
    ``response is not JSON: Expecting value: line 1 column 1 (char 0)``.
    """

    key: ClassVar[str] = "json_valid"
    version: ClassVar[str] = "1"
    default_threshold: ClassVar[float] = 1.0
    awaits_io: ClassVar[bool] = False

    def validate_config(self, config: Mapping[str, Any]) -> Mapping[str, Any]:
        ConfigReader(config, ())
        return NO_CONFIG

    async def evaluate(self, config: Mapping[str, Any], data: EvaluationInput) -> EvaluationResult:
        _, problem = _response_value(data)
        if problem is not None:
            return check_result(False, {"reason": f"response is not JSON: {problem}"})
        return check_result(True)


MAX_SCHEMA_ERRORS = 100
_MAX_MESSAGE_CHARS = 300
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def json_path(parts: Iterable[str | int]) -> str:
    """A JSONPath for an error location: ``$.items[2].name``, ``$["odd key"]``."""
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            path += f".{part}"
        else:
            path += f"[{json.dumps(part)}]"
    return path


def _sort_key(error: ValidationError) -> tuple[tuple[tuple[int, int, str], ...], str]:
    # Paths mix ints and strings; tag them so items[2] sorts before items[10] without a TypeError.
    path = tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path)
    return path, error.message


def _describe(error: ValidationError) -> str:
    message = error.message
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[: _MAX_MESSAGE_CHARS - 1] + "…"
    return f"{json_path(error.absolute_path)}: {message}"


@dataclass(frozen=True, slots=True)
class JsonSchemaConfig:
    # None: validate against the prompt version's response_schema at evaluation time.
    validator: Draft202012Validator | None
    check_formats: bool


class JsonSchema:
    """The response is JSON that validates against a JSON Schema (Draft 2020-12).

    Config:
    - ``schema`` (object, optional): the schema; defaults to the prompt version's
      ``response_schema``. A configured schema is checked against the 2020-12 metaschema at
      validation.
    - ``check_formats`` (boolean, default false): also assert ``format`` (``date``,
      ``email``, ...), which Draft 2020-12 treats as an annotation by default.

    Score 1 or 0. A response that is not JSON fails with ``details.reason``
    ``response is not JSON: <error>``. Otherwise ``details.errors`` lists every violation
    (up to 100; ``details.error_count`` is the total) as ``$.items[2].name: 'x' is not of
    type 'integer'``. With no schema at all the result is an error.
    """

    key: ClassVar[str] = "json_schema"
    version: ClassVar[str] = "1"
    default_threshold: ClassVar[float] = 1.0
    awaits_io: ClassVar[bool] = False

    def validate_config(self, config: Mapping[str, Any]) -> JsonSchemaConfig:
        reader = ConfigReader(config, ("schema", "check_formats"))
        check_formats = reader.boolean("check_formats", False)
        schema = reader.raw("schema")
        if schema is None:
            return JsonSchemaConfig(None, check_formats)
        if not isinstance(schema, Mapping | bool):
            raise EvaluatorConfigError(
                f"expected a JSON Schema object, got {json_type_name(schema)}", "schema"
            )
        try:
            canonical = json.dumps(schema, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise EvaluatorConfigError(f"must be plain JSON: {exc}", "schema") from None
        try:
            validator = _checked_validator(canonical, check_formats)
        except SchemaError as exc:
            raise EvaluatorConfigError(
                f"not a valid JSON Schema: {json_path(exc.absolute_path)}: {exc.message}",
                "schema",
            ) from None
        return JsonSchemaConfig(validator, check_formats)

    async def evaluate(self, config: JsonSchemaConfig, data: EvaluationInput) -> EvaluationResult:
        validator = config.validator
        if validator is None:
            if data.response_schema is None:
                return error_result(
                    "no schema: set config.schema or give the prompt version a response_schema"
                )
            # Not check_schema'd here: that costs ~0.7 ms a call; a broken schema shows up
            # as an exception while validating and is diagnosed below.
            validator = _validator(data.response_schema, config.check_formats)
        value, problem = _response_value(data)
        if problem is not None:
            return check_result(False, {"reason": f"response is not JSON: {problem}"})
        try:
            errors = sorted(validator.iter_errors(value), key=_sort_key)
        except Exception as exc:  # a malformed schema can raise almost anything
            reason = _schema_problem(validator.schema, exc)
            return error_result(f"response_schema is not a valid JSON Schema: {reason}")
        if not errors:
            return check_result(True)
        return check_result(
            False,
            {
                "errors": [_describe(e) for e in errors[:MAX_SCHEMA_ERRORS]],
                "error_count": len(errors),
            },
        )


def _schema_problem(schema: Any, raised: Exception) -> str:
    """Why validating against ``schema`` raised: the metaschema's verdict when it has one."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"{json_path(exc.absolute_path)}: {exc.message}"
    return f"{type(raised).__name__}: {raised}"


@functools.lru_cache(maxsize=256)
def _checked_validator(canonical_schema: str, check_formats: bool) -> Draft202012Validator:
    """A validator for a metaschema-checked schema, given as canonical JSON text.

    check_schema costs ~0.7 ms, 30 times a whole cheap evaluation, and the same few
    schemas are validated again each time specs are reloaded or ``run_specs`` is called.
    Keyed by text, the cached validator also owns its copy: a caller mutating the dict
    it passed cannot change what an existing plan validates against.
    """
    schema = json.loads(canonical_schema)
    Draft202012Validator.check_schema(schema)
    return _validator(schema, check_formats)


def _validator(schema: Any, check_formats: bool) -> Draft202012Validator:
    checker = Draft202012Validator.FORMAT_CHECKER if check_formats else None
    return Draft202012Validator(schema, format_checker=checker)


TokenCounter = Callable[[str, str], int]
"""``(model, text) -> tokens``; the gateway's is ``gateway.tokens.counting.count_text``."""


def gateway_token_counter() -> TokenCounter | None:
    """The gateway's own counter, or None where ``gateway.tokens`` cannot be imported."""
    try:
        from gateway.tokens.counting import count_text
    except ImportError:
        return None
    return count_text


@dataclass(frozen=True, slots=True)
class LengthConfig:
    minimum: int | None
    maximum: int | None
    unit: Literal["chars", "tokens"]


class Length:
    """The response's length is within bounds.

    Config:
    - ``min`` (integer ≥ 0, optional) and ``max`` (integer ≥ 0, optional): inclusive bounds;
      at least one is required.
    - ``unit`` (``"chars"`` or ``"tokens"``, default ``"chars"``): characters are Unicode code
      points of the raw response; tokens are counted with the request model's tokenizer
      (``gateway.tokens.counting.count_text``), not taken from ``usage``, which also counts
      reasoning tokens the response text does not contain.

    Score 1 or 0; ``details.length`` is the measured length. The token counter can be
    injected (``Length(token_counter=...)``) so the library runs without the gateway.
    """

    key: ClassVar[str] = "length"
    version: ClassVar[str] = "1"
    default_threshold: ClassVar[float] = 1.0
    awaits_io: ClassVar[bool] = False

    def __init__(self, token_counter: TokenCounter | None = None) -> None:
        self._token_counter = token_counter

    def _counter(self) -> TokenCounter | None:
        if self._token_counter is None:
            self._token_counter = gateway_token_counter()
        return self._token_counter

    def validate_config(self, config: Mapping[str, Any]) -> LengthConfig:
        reader = ConfigReader(config, ("min", "max", "unit"))
        minimum = reader.optional_int("min", minimum=0)
        maximum = reader.optional_int("max", minimum=0)
        if minimum is None and maximum is None:
            raise EvaluatorConfigError("set min, max or both", "min")
        if minimum is not None and maximum is not None and minimum > maximum:
            raise EvaluatorConfigError(f"min ({minimum}) is greater than max ({maximum})", "min")
        unit = reader.optional_str("unit") or "chars"
        if unit == "chars":
            return LengthConfig(minimum, maximum, "chars")
        if unit != "tokens":
            raise EvaluatorConfigError(f"must be 'chars' or 'tokens', got {unit!r}", "unit")
        if self._counter() is None:
            raise EvaluatorConfigError(
                "token counting is unavailable: gateway.tokens could not be imported", "unit"
            )
        return LengthConfig(minimum, maximum, "tokens")

    async def evaluate(self, config: LengthConfig, data: EvaluationInput) -> EvaluationResult:
        if config.unit == "chars":
            length = len(data.response_text)
        else:
            counter = self._counter()
            if counter is None:
                return error_result("token counting is unavailable")
            model = data.request.get("model")
            length = counter(model if isinstance(model, str) else "", data.response_text)
        ok = (config.minimum is None or length >= config.minimum) and (
            config.maximum is None or length <= config.maximum
        )
        return check_result(
            ok,
            {"length": length, "unit": config.unit, "min": config.minimum, "max": config.maximum},
        )
