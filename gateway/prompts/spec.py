"""What a prompt or version may contain, checked once, for the admin API and prompt files alike.

Shapes are msgspec Structs (Litestar turns their validation failures into 400s naming the
field); `check_version` adds what a type cannot say: every placeholder is declared, every
declared variable is used, schemas are valid JSON Schema, params don't touch what the gateway
owns. Errors are `InvalidRequest`s whose `param` is a path like `messages[1].content`, so a
prompt file can point at the line.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Literal

import msgspec

from evaluators.safe_schema import SchemaProblem, check_schema
from gateway.errors import InvalidRequest
from gateway.prompts.template import VARIABLE_NAME, placeholders_in
from gateway.proxy.payloads import FORBIDDEN_FIELDS

__all__ = [
    "LABEL_PATTERN",
    "SLUG",
    "SLUG_PATTERN",
    "LabelName",
    "MessageSpec",
    "PromptPatch",
    "PromptSpec",
    "Slug",
    "VersionContent",
    "VersionSpec",
    "check_version",
]

# msgspec checks a pattern with re.search, where `$` also matches before a trailing newline:
# `(?!\n)` keeps "name\n" out (and means nothing to a JSON Schema reader).
SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*(?!\n)$"
LABEL_PATTERN = r"^[a-z0-9][a-z0-9_.-]*(?!\n)$"
SLUG = re.compile(SLUG_PATTERN)

Slug = Annotated[
    str,
    msgspec.Meta(
        pattern=SLUG_PATTERN,
        max_length=100,
        description="lowercase letters, digits and single dashes, e.g. 'support-reply'",
    ),
]
LabelName = Annotated[str, msgspec.Meta(pattern=LABEL_PATTERN, max_length=100)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
VariableName = Annotated[str, msgspec.Meta(pattern=f"^{VARIABLE_NAME}$")]
Description = Annotated[str, msgspec.Meta(max_length=2000)]

# Keys a version's params may not set: the gateway or the client owns them.
RESERVED_PARAMS = frozenset({"messages", "model", "stream", "stream_options", "sluice"})


class MessageSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class PromptSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    slug: Slug
    description: Description = ""
    tags: Annotated[list[Tag], msgspec.Meta(max_length=50)] = []


class PromptPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    description: Description | None = None
    tags: Annotated[list[Tag], msgspec.Meta(max_length=50)] | None = None
    archived: bool | None = None
    """False restores an archived prompt."""


class VersionSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    messages: Annotated[list[MessageSpec], msgspec.Meta(min_length=1, max_length=500)]
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    params: dict[str, Any] = {}
    variables: Annotated[list[VariableName], msgspec.Meta(max_length=200)] = []
    variables_schema: dict[str, Any] | None = None
    response_schema: dict[str, Any] | None = None
    note: Annotated[str, msgspec.Meta(max_length=5000)] = ""
    created_by: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class VersionContent(msgspec.Struct, frozen=True, kw_only=True):
    """The part of a version that decides what is sent upstream, in stored (plain) form."""

    messages: list[dict[str, Any]]
    model: str | None
    params: dict[str, Any]
    variables: list[str]
    variables_schema: dict[str, Any] | None
    response_schema: dict[str, Any] | None

    def content_hash(self) -> str:
        # Sorted keys: the same content hashes the same whichever file format it came from.
        encoded = msgspec.json.encode(msgspec.structs.asdict(self), order="sorted")
        return hashlib.sha256(encoded).hexdigest()


def _check_schema(name: str, schema: dict[str, Any]) -> None:
    # Bounded, local refs only, RE2 patterns: the schema is used on the request path.
    try:
        check_schema(schema)
    except SchemaProblem as exc:
        raise InvalidRequest(f"{name} is refused: {exc}.", param=name) from None


def _check_variables(spec: VersionSpec, messages: list[dict[str, Any]]) -> None:
    duplicates = sorted({name for name in spec.variables if spec.variables.count(name) > 1})
    if duplicates:
        raise InvalidRequest(
            f"'variables' lists {', '.join(duplicates)} more than once.", param="variables"
        )
    used = placeholders_in(messages)
    undeclared = [name for name in used if name not in spec.variables]
    if undeclared:
        first = used[undeclared[0]]
        names = ", ".join("{{" + name + "}}" for name in undeclared)
        raise InvalidRequest(
            f"Placeholder{'s' if len(undeclared) > 1 else ''} {names} "
            f"{'are' if len(undeclared) > 1 else 'is'} not declared (first at {first}): "
            "add every placeholder's name to 'variables'.",
            param=first,
        )
    unused = [name for name in spec.variables if name not in used]
    if unused:
        raise InvalidRequest(
            f"Declared variable{'s' if len(unused) > 1 else ''} {', '.join(unused)} "
            f"{'are' if len(unused) > 1 else 'is'} not used by any {{{{placeholder}}}} in "
            "'messages': remove it from 'variables' or use it.",
            param="variables",
        )
    if spec.variables_schema is not None:
        schema = spec.variables_schema
        _check_schema("variables_schema", schema)
        if schema.get("type", "object") != "object":
            raise InvalidRequest(
                "variables_schema describes the variables object: its 'type' must be 'object'.",
                param="variables_schema",
            )
        properties = schema.get("properties")
        if isinstance(properties, dict):
            strangers = sorted(set(properties) - set(spec.variables))
            if strangers:
                raise InvalidRequest(
                    f"variables_schema describes {', '.join(strangers)}, which "
                    f"{'are' if len(strangers) > 1 else 'is'} not in 'variables'.",
                    param="variables_schema",
                )


def _check_params(params: dict[str, Any]) -> None:
    reserved = sorted((RESERVED_PARAMS | FORBIDDEN_FIELDS).intersection(params))
    if reserved:
        raise InvalidRequest(
            f"params may not set {', '.join(reserved)}: messages and model have fields of "
            "their own, and streaming and the upstream are the caller's and the gateway's.",
            param=f"params.{reserved[0]}",
        )


def check_version(spec: VersionSpec) -> VersionContent:
    """Check what the types cannot and return the version's content in stored form."""
    messages: list[dict[str, Any]] = msgspec.to_builtins(spec.messages)
    for index, message in enumerate(messages):
        if message.get("content") is None and not message.get("tool_calls"):
            raise InvalidRequest(
                f"messages[{index}] has no content.", param=f"messages[{index}].content"
            )
    _check_params(spec.params)
    _check_variables(spec, messages)
    if spec.response_schema is not None:
        _check_schema("response_schema", spec.response_schema)
    return VersionContent(
        messages=messages,
        model=spec.model,
        params=dict(spec.params),
        variables=list(spec.variables),
        variables_schema=spec.variables_schema,
        response_schema=spec.response_schema,
    )
