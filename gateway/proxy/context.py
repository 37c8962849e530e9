"""Who is calling and how: the `X-Sluice-*` headers and the `sluice` body field, validated.

Headers win over the body field. Every value is checked here, once: strict UTF-8, no control
characters, bounded lengths; a bad one is a 400 naming the header.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.db.base import utcnow
from gateway.errors import InvalidRequest
from gateway.ids import new_id
from gateway.input_bounds import check_identifier, check_int, decode_json
from gateway.keys.service import KeyInfo

__all__ = ["CallContext", "PromptSelector", "RawHeaders", "apply_body_field", "parse_call_headers"]

RawHeaders = Iterable[tuple[bytes, bytes]]

MAX_VARIABLES_HEADER = 8 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TAG_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
# Never '~': the request log stores a reused id as `<id>~<row id>` (requestlog/buffer.py), which
# must not collide with an id a caller can send.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_NO_LOG = {"request": (True, False), "response": (False, True), "all": (True, True)}


@dataclass(slots=True)
class PromptSelector:
    slug: str | None = None
    version: int | None = None
    label: str | None = None
    variables: dict[str, Any] | None = None


@dataclass(slots=True)
class CallContext:
    request_id: str
    started: float
    created_at: datetime
    authorization: str | None = None
    key: KeyInfo | None = None
    user: str | None = None
    session: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    test_run: bool = False
    no_log_request: bool = False
    no_log_response: bool = False
    prompt: PromptSelector = field(default_factory=PromptSelector)
    request_id_generated: bool = False
    # Set once per header so that the body field does not override it.
    from_headers: set[str] = field(default_factory=set)

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None


def _text(name: str, raw: bytes, limit: int | None = 200) -> str:
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest(f"Header {name} is not valid UTF-8.", param=name) from None
    # HTTP allows a tab inside a header value; only the variables header (JSON) has a use for it.
    if _CONTROL.search(value) or ("\t" in value and name != "x-sluice-prompt-variables"):
        raise InvalidRequest(f"Header {name} contains control characters.", param=name)
    value = value.strip()
    if limit is not None and len(value) > limit:
        raise InvalidRequest(f"Header {name} is longer than {limit} characters.", param=name)
    return value


def _bool(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no", ""}:
        return False
    raise InvalidRequest(f"Header {name} must be 'true' or 'false'.", param=name)


def _version(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidRequest(f"{name} must be a version number.", param=name)
    try:
        number = int(value)
    except ValueError:
        raise InvalidRequest(
            f"{name} must be a version number, got {value!r}.", param=name
        ) from None
    if number < 1:
        raise InvalidRequest(f"{name} must be 1 or more.", param=name)
    return check_int(name, number)


def _variables(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str | bytes):
        if len(value) > MAX_VARIABLES_HEADER:
            raise InvalidRequest(
                f"{name} is larger than 8 KiB: send the variables in the request body as "
                '"sluice": {"variables": {...}} instead.',
                param=name,
            )
        value = decode_json(value, what=name)
    if not isinstance(value, dict):
        raise InvalidRequest(f"{name} must be a JSON object of variable values.", param=name)
    return value


def parse_call_headers(headers: RawHeaders) -> CallContext:
    call = CallContext(request_id="", started=time.perf_counter(), created_at=utcnow())
    for raw_name, raw_value in headers:
        if raw_name == b"authorization":
            call.authorization = raw_value.decode("latin-1")
            continue
        if not raw_name.startswith(b"x-sluice-"):
            continue
        name = raw_name.decode("latin-1")
        suffix = name[9:]
        if suffix.startswith("tag-"):
            tag = suffix[4:]
            if not _TAG_NAME.fullmatch(tag):
                raise InvalidRequest(
                    f"Header {name}: tag names are 1-64 of a-z, 0-9, '_', '-', '.'.", param=name
                )
            call.tags[tag] = _text(name, raw_value)
            continue
        # The variables header has a size rule of its own, whose error points to the body field.
        value = _text(
            name, raw_value, None if suffix == "prompt-variables" else MAX_VARIABLES_HEADER
        )
        call.from_headers.add(suffix)
        if suffix == "prompt":
            call.prompt.slug = value
        elif suffix == "prompt-version":
            call.prompt.version = _version(name, value)
        elif suffix == "prompt-label":
            call.prompt.label = value
        elif suffix == "prompt-variables":
            call.prompt.variables = _variables(name, raw_value)
        elif suffix in {"user", "session"}:
            if len(value) > 200:
                raise InvalidRequest(f"Header {name} is longer than 200 characters.", param=name)
            setattr(call, suffix, value or None)
        elif suffix == "test-run":
            call.test_run = _bool(name, value)
        elif suffix == "request-id":
            if not _REQUEST_ID.fullmatch(value):
                raise InvalidRequest(
                    f"Header {name} must be 1-128 characters of letters, digits and ._:/+=-",
                    param=name,
                )
            call.request_id = value
        elif suffix == "no-log":
            if value.lower() not in _NO_LOG:
                raise InvalidRequest(
                    f"Header {name} must be 'request', 'response' or 'all'.", param=name
                )
            call.no_log_request, call.no_log_response = _NO_LOG[value.lower()]
    if not call.request_id:
        call.request_id = new_id()
        call.request_id_generated = True
    return call


def apply_body_field(call: CallContext, field_value: Any) -> None:
    """Merge the `sluice` body field into the call; values from headers are kept."""
    if field_value is None:
        return
    if not isinstance(field_value, dict):
        raise InvalidRequest("The 'sluice' field must be an object.", param="sluice")
    known = {"prompt", "version", "label", "variables", "user", "session", "tags", "test_run"}
    unknown = set(field_value) - known
    if unknown:
        raise InvalidRequest(
            f"Unknown fields in 'sluice': {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(known))}.",
            param="sluice",
        )
    given = call.from_headers
    for key, header, attr in (("prompt", "prompt", "slug"), ("label", "prompt-label", "label")):
        value = field_value.get(key)
        if value is not None and header not in given:
            if not isinstance(value, str):
                raise InvalidRequest(f"sluice.{key} must be a string.", param=f"sluice.{key}")
            setattr(call.prompt, attr, check_identifier(f"sluice.{key}", value))
    if field_value.get("version") is not None and "prompt-version" not in given:
        call.prompt.version = _version("sluice.version", field_value["version"])
    if field_value.get("variables") is not None and "prompt-variables" not in given:
        call.prompt.variables = _variables("sluice.variables", field_value["variables"])
    for key in ("user", "session"):
        value = field_value.get(key)
        if value is not None and key not in given:
            if not isinstance(value, str) or len(value) > 200:
                raise InvalidRequest(
                    f"sluice.{key} must be a string of at most 200 characters.",
                    param=f"sluice.{key}",
                )
            setattr(call, key, check_identifier(f"sluice.{key}", value))
    tags = field_value.get("tags")
    if tags is not None:
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in tags.items()
        ):
            raise InvalidRequest(
                "sluice.tags must be an object of string values.", param="sluice.tags"
            )
        for name, value in tags.items():
            tag = name.lower()
            if not _TAG_NAME.fullmatch(tag):
                raise InvalidRequest(f"sluice.tags: bad tag name {name!r}.", param="sluice.tags")
            text = check_identifier(f"sluice.tags.{tag}", str(value)[:200])
            call.tags.setdefault(tag, text)
    if field_value.get("test_run") is not None and "test-run" not in given:
        if not isinstance(field_value["test_run"], bool):
            raise InvalidRequest("sluice.test_run must be true or false.", param="sluice.test_run")
        call.test_run = field_value["test_run"]
