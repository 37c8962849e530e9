"""Reading an evaluator's JSON config into typed values, naming the field in every error."""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping
from typing import Any

from evaluators.base import EvaluatorConfigError


def json_type_name(value: Any) -> str:
    """The JSON name of a value's type, as a config author would call it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


class ConfigReader:
    """Typed access to one config dict; rejects fields the evaluator does not know.

    A null value counts as absent, so ``{"value": null}`` means "use the default".
    """

    def __init__(self, config: Mapping[str, Any] | None, allowed: Collection[str]) -> None:
        if config is None:
            config = {}
        if not isinstance(config, Mapping):
            raise EvaluatorConfigError(
                f"config must be an object, got {json_type_name(config)}", "config"
            )
        for name in config:
            if name not in allowed:
                raise EvaluatorConfigError(_unknown_field_message(str(name), allowed), str(name))
        self._config = config

    def raw(self, name: str) -> Any:
        return self._config.get(name)

    def optional_str(self, name: str) -> str | None:
        value = self._config.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise EvaluatorConfigError(f"expected a string, got {json_type_name(value)}", name)
        return value

    def required_str(self, name: str) -> str:
        value = self.optional_str(name)
        if value is None or not value.strip():
            raise EvaluatorConfigError("is required and must be a non-empty string", name)
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._config.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise EvaluatorConfigError(f"expected true or false, got {json_type_name(value)}", name)
        return value

    def optional_number(self, name: str, *, minimum: float | None = None) -> float | None:
        value = self._config.get(name)
        if value is None:
            return None
        # bool is an int subclass in Python; `true` is never a sensible number in a config.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EvaluatorConfigError(f"expected a number, got {json_type_name(value)}", name)
        if not math.isfinite(value):
            raise EvaluatorConfigError("must be a finite number", name)
        if minimum is not None and value < minimum:
            raise EvaluatorConfigError(f"must be at least {minimum:g}, got {value:g}", name)
        return float(value)

    def optional_int(self, name: str, *, minimum: int | None = None) -> int | None:
        value = self._config.get(name)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise EvaluatorConfigError(f"expected an integer, got {json_type_name(value)}", name)
        if minimum is not None and value < minimum:
            raise EvaluatorConfigError(f"must be at least {minimum}, got {value}", name)
        return value

    def str_list(self, name: str) -> tuple[str, ...]:
        """A required, non-empty array of non-empty strings."""
        value = self._config.get(name)
        if value is None:
            raise EvaluatorConfigError("is required: a non-empty array of strings", name)
        if not isinstance(value, list | tuple):
            raise EvaluatorConfigError(
                f"expected an array of strings, got {json_type_name(value)}", name
            )
        if not value:
            raise EvaluatorConfigError("must not be empty", name)
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise EvaluatorConfigError(
                    f"item {index} must be a non-empty string, got {json_type_name(item)}", name
                )
        return tuple(value)


def _unknown_field_message(name: str, allowed: Collection[str]) -> str:
    known = sorted(allowed)
    message = f"unknown config field {name!r}"
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    if known:
        return message + f"; allowed fields: {', '.join(known)}"
    return message + "; this evaluator takes no config"
