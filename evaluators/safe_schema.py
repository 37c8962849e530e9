"""JSON Schemas from users: bounded, self-contained, and validated without backtracking regexes.

A schema arrives from admin config (an evaluator's ``schema``, a version's
``response_schema`` or ``variables_schema``, an imported suite). python-jsonschema, left to
its defaults, would resolve a ``$ref`` to ``http://...`` by fetching it, synchronously and
with no timeout, on the request path (server-side request forgery, and a slow server stalls
every request). It also runs ``pattern`` and ``patternProperties`` on Python's backtracking
``re`` and recurses once per nesting level. So here:

- ``check_schema`` refuses, with a message naming what to change, a schema nested deeper
  than MAX_SCHEMA_DEPTH or larger than MAX_SCHEMA_BYTES serialized, a ``$ref`` or
  ``$dynamicRef`` that does not start with ``#`` (only refs within the schema itself), a
  ``pattern`` or ``patternProperties`` key RE2 cannot run, ``unevaluatedProperties`` next
  to ``patternProperties`` (jsonschema evaluates that pair with ``re``), and anything the
  2020-12 metaschema rejects.
- ``validator_for`` builds a validator whose registry refuses to retrieve anything, so
  even a schema that skipped ``check_schema`` (one stored before these rules) fetches
  nothing, and whose ``pattern``, ``patternProperties`` and ``additionalProperties``
  keywords match with RE2.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

from evaluators.safe_regex import UnsupportedPattern, compile_pattern

__all__ = [
    "MAX_SCHEMA_BYTES",
    "MAX_SCHEMA_DEPTH",
    "SafeValidator",
    "SchemaProblem",
    "check_schema",
    "json_path",
    "validator_for",
]

MAX_SCHEMA_DEPTH = 64
MAX_SCHEMA_BYTES = 256 * 1024


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def json_path(parts: Iterable[str | int]) -> str:
    """A JSONPath for a location: ``$.items[2].name``, ``$["odd key"]``."""
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            path += f".{part}"
        else:
            path += f"[{json.dumps(part)}]"
    return path


class SchemaProblem(ValueError):
    """Why a schema is refused, in words a person can act on (with a ``$.path`` to the spot)."""


def _refuse(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


# Nothing is ever fetched: not over HTTP, not from a file. Refs resolve within the schema.
_REGISTRY: Registry[Any] = Registry(retrieve=_refuse)  # type: ignore[call-arg]


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and compile_pattern(pattern).search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        compiled = compile_pattern(pattern)
        for key, value in instance.items():
            if compiled.search(key) is not None:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> set[str]:
    properties = schema.get("properties", {})
    patterns = [compile_pattern(p) for p in schema.get("patternProperties", {})]
    return {
        key
        for key in instance
        if key not in properties and not any(p.search(key) is not None for p in patterns)
    }


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    # jsonschema's own joins the patternProperties keys into one `re` pattern.
    if not validator.is_type(instance, "object"):
        return
    extras = _additional(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in sorted(extras):
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        joined = ", ".join(repr(each) for each in sorted(extras))
        if "patternProperties" in schema:
            patterns = ", ".join(repr(each) for each in sorted(schema["patternProperties"]))
            verb = "does" if len(extras) == 1 else "do"
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {patterns}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(
                f"Additional properties are not allowed ({joined} {verb} unexpected)"
            )


SafeValidator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    validators={
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)

_FORMATS = FormatChecker()
_FORMATS.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)


@_FORMATS.checks("regex", raises=UnsupportedPattern)
def _is_regex(instance: object) -> bool:
    # The stock check compiles the response's string with `re`; RE2 is what we would run.
    return not isinstance(instance, str) or compile_pattern(instance) is not None


def validator_for(schema: Any, *, check_formats: bool = False) -> Validator:
    """A validator for ``schema`` that resolves only refs within it and matches with RE2."""
    return SafeValidator(  # type: ignore[no-any-return]
        schema, registry=_REGISTRY, format_checker=_FORMATS if check_formats else None
    )


def check_schema(schema: Any) -> None:
    """Raise SchemaProblem unless ``schema`` is a bounded, self-contained 2020-12 schema."""
    if not isinstance(schema, Mapping | bool):
        raise SchemaProblem("a JSON Schema must be an object or a boolean")
    try:
        size = len(json.dumps(schema, allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise SchemaProblem(f"must be plain JSON: {exc}") from None
    except RecursionError:
        raise SchemaProblem(f"is nested more than {MAX_SCHEMA_DEPTH} levels deep") from None
    if size > MAX_SCHEMA_BYTES:
        raise SchemaProblem(
            f"is {size} bytes serialized; a schema may be at most {MAX_SCHEMA_BYTES} bytes"
        )
    _walk(schema)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = json_path(exc.absolute_path)
        raise SchemaProblem(f"not a valid JSON Schema: {where}: {exc.message}") from None


def _walk(schema: Any) -> None:
    """Depth, refs and patterns, checked iteratively: a deep schema must not blow the stack."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(schema, ())]
    uses_pattern_properties = uses_unevaluated = False
    while stack:
        node, path = stack.pop()
        if not isinstance(node, list | Mapping):
            continue
        if len(path) > MAX_SCHEMA_DEPTH:
            raise SchemaProblem(
                f"is nested more than {MAX_SCHEMA_DEPTH} levels deep (at {json_path(path[:6])}"
                "...); flatten it or use $defs"
            )
        if isinstance(node, list):
            stack.extend((item, (*path, i)) for i, item in enumerate(node))
            continue
        for keyword in ("$ref", "$dynamicRef"):
            ref = node.get(keyword)
            if isinstance(ref, str) and not ref.startswith("#"):
                raise SchemaProblem(
                    f"{json_path((*path, keyword))}: {ref[:200]!r} points outside the schema; "
                    "only local refs such as '#/$defs/name' are allowed, and nothing is fetched"
                )
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            _check_pattern(pattern, (*path, "pattern"))
        properties = node.get("patternProperties")
        if isinstance(properties, Mapping):
            uses_pattern_properties = True
            for key in properties:
                _check_pattern(key, (*path, "patternProperties", key))
        uses_unevaluated = uses_unevaluated or "unevaluatedProperties" in node
        stack.extend((value, (*path, str(key))) for key, value in node.items())
    if uses_pattern_properties and uses_unevaluated:
        raise SchemaProblem(
            "unevaluatedProperties cannot be combined with patternProperties here (that pair "
            "would be matched with a backtracking regex engine); use additionalProperties"
        )


def _check_pattern(pattern: str, path: tuple[str | int, ...]) -> None:
    try:
        compile_pattern(pattern)
    except UnsupportedPattern as exc:
        raise SchemaProblem(f"{json_path(path)}: the pattern {pattern[:100]!r} is {exc}") from None
