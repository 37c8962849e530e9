"""A variables_schema stored before the schema checks: never fetched, never a 500."""

from __future__ import annotations

import pytest

from gateway.db.models import PromptVersion
from gateway.errors import InvalidVariables
from gateway.prompts.compiled import CompiledVersion


def test_a_stored_remote_ref_in_variables_schema_is_refused_not_fetched() -> None:
    # Port 9 (discard) would refuse a connection: a fetch would fail differently, not like this.
    row = PromptVersion(
        id="v1",
        prompt_id="p1",
        version=2,
        messages=[{"role": "system", "content": "About {{topic}}."}],
        model=None,
        params={},
        variables=["topic"],
        variables_schema={
            "type": "object",
            "properties": {"topic": {"$ref": "http://127.0.0.1:9/t"}},
        },
        response_schema=None,
    )
    compiled = CompiledVersion.from_row(row, "faq")
    with pytest.raises(
        InvalidVariables, match=r"variables_schema that cannot be used \(Unresolvable: http"
    ):
        compiled.render({"topic": "tides"})
    local = CompiledVersion.from_row(
        PromptVersion(
            id="v2",
            prompt_id="p1",
            version=3,
            messages=row.messages,
            model=None,
            params={},
            variables=["topic"],
            variables_schema={
                "$id": "http://127.0.0.1:9/vars.json",
                "properties": {"topic": {"$ref": "#/$defs/t"}},
                "$defs": {"t": {"type": "string", "pattern": "^(a+)+$"}},
            },
            response_schema=None,
        ),
        "faq",
    )
    stored_lookbehind = CompiledVersion.from_row(
        PromptVersion(
            id="v3",
            prompt_id="p1",
            version=4,
            messages=row.messages,
            model=None,
            params={},
            variables=["topic"],
            variables_schema={"properties": {"topic": {"pattern": "(?<=a)b"}}},
            response_schema=None,
        ),
        "faq",
    )
    with pytest.raises(InvalidVariables, match="lookbehind"):
        stored_lookbehind.render({"topic": "ab"})
    with pytest.raises(InvalidVariables, match="does not match"):
        local.render({"topic": "a" * 40 + "!"})
    assert local.render({"topic": "aaa"})[0]["content"] == "About aaa."
