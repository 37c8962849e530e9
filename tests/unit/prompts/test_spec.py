"""Version checks: placeholders declared and used, schemas valid, reserved params refused."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from gateway.errors import InvalidRequest
from gateway.prompts.spec import VersionSpec, check_version


def _spec(**fields: Any) -> VersionSpec:
    base: dict[str, Any] = {
        "messages": [{"role": "system", "content": "Hi {{name}}"}],
        "variables": ["name"],
    }
    return msgspec.convert({**base, **fields}, VersionSpec)


def _error(**fields: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        check_version(_spec(**fields))
    return info.value


def test_a_valid_version_becomes_plain_content_with_a_stable_hash() -> None:
    content = check_version(_spec(params={"temperature": 0.2}, note="n"))
    assert content.messages == [{"role": "system", "content": "Hi {{name}}"}]
    same = check_version(_spec(params={"temperature": 0.2}, note="another note"))
    assert content.content_hash() == same.content_hash()  # the note is not content
    other = check_version(_spec(params={"temperature": 0.3}))
    assert content.content_hash() != other.content_hash()


def test_undeclared_placeholders_are_named_with_their_place() -> None:
    error = _error(
        messages=[
            {"role": "system", "content": "{{name}}"},
            {"role": "user", "content": "{{ topic }} {{tone}}"},
        ]
    )
    assert "{{topic}}, {{tone}}" in error.message and "not declared" in error.message
    assert error.param == "messages[1].content"


def test_declared_but_unused_variables_are_named() -> None:
    error = _error(variables=["name", "extra", "more"])
    assert "extra, more" in error.message
    assert error.param == "variables"


def test_duplicate_variable_names() -> None:
    assert "more than once" in _error(variables=["name", "name"]).message


def test_variables_schema_must_be_valid_and_about_declared_variables() -> None:
    assert "not a valid JSON Schema" in _error(variables_schema={"type": "objekt"}).message
    assert "'type' must be 'object'" in _error(variables_schema={"type": "string"}).message
    stranger = _error(variables_schema={"type": "object", "properties": {"nope": {}}})
    assert "nope" in stranger.message
    assert _error(response_schema={"type": 5}).param == "response_schema"


@pytest.mark.parametrize("param", ["model", "messages", "stream", "sluice", "api_key", "base_url"])
def test_params_cannot_set_what_the_gateway_or_caller_owns(param: str) -> None:
    assert _error(params={param: "x"}).param == f"params.{param}"


def test_shapes_are_enforced_by_the_struct() -> None:
    with pytest.raises(msgspec.ValidationError):
        _spec(messages=[])
    with pytest.raises(msgspec.ValidationError):
        _spec(messages=[{"role": "wizard", "content": "x"}])
    with pytest.raises(msgspec.ValidationError):
        _spec(variables=["bad name"])
    with pytest.raises(msgspec.ValidationError):
        _spec(surprise=True)


def test_a_message_needs_content() -> None:
    assert _error(messages=[{"role": "user"}], variables=[]).param == "messages[0].content"
