"""Built-in checks on the response's shape: json_valid, json_schema and length."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from evaluators.base import (
    EvaluationInput,
    EvaluationResult,
    EvaluatorConfigError,
    check_result,
    error_result,
    off_loop,
)
from evaluators.config import ConfigReader, json_type_name
from evaluators.safe_schema import (
    MAX_SCHEMA_DEPTH,
    SchemaProblem,
    check_schema,
    json_path,
    validator_for,
)

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
JSON_SCHEMA_THREAD_ABOVE_CHARS = 50_000
_MAX_MESSAGE_CHARS = 300


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
    validator: Validator | None
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
        except RecursionError:
            raise EvaluatorConfigError(
                f"is nested more than {MAX_SCHEMA_DEPTH} levels deep", "schema"
            ) from None
        try:
            validator = _checked_validator(canonical, check_formats)
        except SchemaProblem as exc:
            raise EvaluatorConfigError(str(exc), "schema") from None
        return JsonSchemaConfig(validator, check_formats)

    async def evaluate(self, config: JsonSchemaConfig, data: EvaluationInput) -> EvaluationResult:
        validator = config.validator
        if validator is None:
            if data.response_schema is None:
                return error_result(
                    "no schema: set config.schema or give the prompt version a response_schema"
                )
            # Not check_schema'd here: that costs ~0.7 ms a call, and the version's schema
            # was checked when it was created; a broken one (stored before those checks)
            # shows up as an exception while validating and is diagnosed below.
            validator = validator_for(data.response_schema, check_formats=config.check_formats)
        value, problem = _response_value(data)
        if problem is not None:
            return check_result(False, {"reason": f"response is not JSON: {problem}"})
        if len(data.response_text) > JSON_SCHEMA_THREAD_ABOVE_CHARS:
            # Validating a large document is pure-Python work: in a thread the event loop
            # gets the GIL back every switch interval, and the runner's deadline can fire.
            return await off_loop(self._judge, validator, value)
        return self._judge(validator, value)

    def _judge(self, validator: Validator, value: Any) -> EvaluationResult:
        try:
            errors = sorted(validator.iter_errors(value), key=_sort_key)
        except Exception as exc:  # a malformed schema can raise almost anything
            reason = _schema_problem(validator.schema, exc)
            return error_result(f"response_schema is not usable: {reason}")
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
    """Why validating against ``schema`` raised: our checks' verdict when they have one."""
    try:
        check_schema(schema)
    except SchemaProblem as exc:
        return str(exc)
    return f"{type(raised).__name__}: {raised}"


@functools.lru_cache(maxsize=256)
def _checked_validator(canonical_schema: str, check_formats: bool) -> Validator:
    """A validator for a checked schema (``safe_schema.check_schema``), given as canonical JSON.

    check_schema costs ~0.7 ms, 30 times a whole cheap evaluation, and the same few
    schemas are validated again each time specs are reloaded or ``run_specs`` is called.
    Keyed by text, the cached validator also owns its copy: a caller mutating the dict
    it passed cannot change what an existing plan validates against.
    """
    schema = json.loads(canonical_schema)
    check_schema(schema)
    return validator_for(schema, check_formats=check_formats)


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
