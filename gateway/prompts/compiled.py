"""A version ready for the request path: templates parsed, variables schema compiled.

Built once when a version is first used on a replica and kept (versions never change), so a
render is a membership check, an optional schema check and string joins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from referencing.exceptions import Unresolvable

from evaluators.safe_regex import UnsupportedPattern
from evaluators.safe_schema import validator_for
from gateway.db.models import PromptVersion
from gateway.errors import InvalidVariables, MissingVariable
from gateway.prompts.template import CompiledMessages, compile_messages

__all__ = ["CompiledVersion"]

MAX_REPORTED_ERRORS = 5


@dataclass(frozen=True, slots=True)
class CompiledVersion:
    id: str
    slug: str
    version: int
    model: str | None
    params: dict[str, Any]
    variables: tuple[str, ...]
    messages: CompiledMessages
    validator: Validator | None

    @classmethod
    def from_row(cls, row: PromptVersion, slug: str) -> CompiledVersion:
        return cls(
            id=row.id,
            slug=slug,
            version=row.version,
            model=row.model,
            params=dict(row.params),
            variables=tuple(row.variables),
            messages=compile_messages(row.messages),
            # Never fetches a $ref, and matches `pattern` with RE2: this runs per request.
            validator=(
                validator_for(row.variables_schema) if row.variables_schema is not None else None
            ),
        )

    def render(self, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The version's messages with `values` filled in, or MissingVariable/InvalidVariables."""
        missing = [name for name in self.variables if name not in values]
        if missing:
            raise MissingVariable(
                f"Prompt '{self.slug}' version {self.version} needs the variable"
                f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}: send them in "
                "X-Sluice-Prompt-Variables or the body's sluice.variables.",
                param="variables",
            )
        if self.validator is not None:
            try:
                errors = sorted(
                    self.validator.iter_errors(dict(values)),
                    key=lambda e: [str(step) for step in e.path],
                )
            except (Unresolvable, UnsupportedPattern) as exc:
                # Only a schema stored before these checks existed gets here: a non-local $ref (not
                # fetched) or a pattern RE2 cannot run. The version is unusable until fixed.
                raise InvalidVariables(
                    f"Prompt '{self.slug}' version {self.version} has a variables_schema that "
                    f"cannot be used ({exc}): refs must be local ('#/$defs/...') and patterns "
                    "RE2 syntax; create a version with a fixed schema.",
                    param="variables",
                ) from None
            if errors:
                shown = "; ".join(
                    f"{'.'.join(str(step) for step in e.path) or '(variables)'}: {e.message[:200]}"
                    for e in errors[:MAX_REPORTED_ERRORS]
                )
                more = len(errors) - MAX_REPORTED_ERRORS
                raise InvalidVariables(
                    f"Variables for prompt '{self.slug}' version {self.version} do not match "
                    f"its variables_schema: {shown}{f' (and {more} more)' if more > 0 else ''}.",
                    param="variables",
                )
        return self.messages.render(values)


def _error_path(error: ValidationError) -> list[str]:
    return [str(step) for step in error.path]
