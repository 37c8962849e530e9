"""Prompt resolution through the official openai SDK: the fake upstream echoes what it got."""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import RunningGateway
from tests.e2e.prompts_support import echo, make_prompt, set_label, system, system_text


def test_resolution_order(gateway: RunningGateway) -> None:
    make_prompt(gateway, "order", system("one"), system("two"), system("three"))
    client = gateway.openai()

    def version(headers: dict[str, str] | None = None, **body: object) -> str:
        received, raw = echo(client, {"X-Sluice-Prompt": "order", **(headers or {})}, **body)
        assert (
            raw.headers["x-sluice-prompt-version"]
            == f"order@{ {'one': 1, 'two': 2, 'three': 3}[system_text(received)] }"
        )
        return system_text(received)

    assert version() == "three"  # no production label: latest
    set_label(gateway, "order", "production", 2)
    assert version() == "two"  # production
    set_label(gateway, "order", "staging", 1)
    assert version({"X-Sluice-Prompt-Label": "staging"}) == "one"  # a label
    assert version({"X-Sluice-Prompt-Label": "latest"}) == "three"  # latest is implicit
    # A pinned version wins over a label.
    assert version({"X-Sluice-Prompt-Label": "staging", "X-Sluice-Prompt-Version": "3"}) == "three"
    # The same selection through the body field, and a header wins over it.
    assert version(extra_body={"sluice": {"prompt": "order", "version": 1}}) == "one"
    received, _ = echo(client, extra_body={"sluice": {"prompt": "order", "label": "staging"}})
    assert system_text(received) == "one"
    assert (
        version({"X-Sluice-Prompt-Version": "3"}, extra_body={"sluice": {"version": 1}}) == "three"
    )


def test_final_request_is_version_messages_then_client_with_version_settings(
    gateway: RunningGateway,
) -> None:
    make_prompt(
        gateway,
        "settings",
        system(
            "Be {{tone}}.",
            variables=["tone"],
            model="gpt-4o",
            params={"temperature": 0.1, "max_tokens": 50},
        ),
    )
    received, raw = echo(
        gateway.openai(),
        {"X-Sluice-Prompt": "settings", "X-Sluice-Prompt-Variables": '{"tone": "kind"}'},
        model="gpt-4o-mini",
        temperature=0.9,
        top_p=0.5,
        extra_body={"seed": 7},
    )
    assert received["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "#echo"},
    ]
    assert received["model"] == "gpt-4o"  # the version's model wins
    assert received["temperature"] == 0.1  # and every param it sets
    assert received["max_tokens"] == 50
    assert received["top_p"] == 0.5  # the request supplies the rest
    assert received["seed"] == 7
    assert "sluice" not in received
    assert raw.headers["x-sluice-prompt-version"] == "settings@1"
    assert "x-sluice-ab-variant" not in raw.headers


def test_rendering_edge_cases(gateway: RunningGateway) -> None:
    template = "{{name}}|{{ name }}|{{  n  }}|{{obj}}|{not}|{{}}|{{ two words }}"
    make_prompt(gateway, "render", system(template, variables=["name", "n", "obj"]))
    variables = {"name": "{{n}} and {{ obj }}", "n": 42, "obj": {"a": [1, None]}}
    received, _ = echo(
        gateway.openai(),
        {"X-Sluice-Prompt": "render", "X-Sluice-Prompt-Variables": json.dumps(variables)},
    )
    assert system_text(received) == (
        '{{n}} and {{ obj }}|{{n}} and {{ obj }}|42|{"a":[1,null]}|{not}|{{}}|{{ two words }}'
    )


def test_multi_part_content_and_streaming(gateway: RunningGateway) -> None:
    make_prompt(
        gateway,
        "parts",
        {
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Topic: {{topic}}"}]},
                {"role": "user", "content": "#reply=fine"},
            ],
            "variables": ["topic"],
        },
    )
    client = gateway.openai()
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "assistant", "content": "earlier"}],
        stream=True,
        extra_headers={"X-Sluice-Prompt": "parts", "X-Sluice-Prompt-Variables": '{"topic": "tea"}'},
    ) as response:
        assert response.headers["x-sluice-prompt-version"] == "parts@1"
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text == "fine"
    [row] = gateway.wait_for_rows(1, prompt="parts")
    assert row["streamed"] is True and row["prompt_version"] == 1


def test_variable_errors(gateway: RunningGateway) -> None:
    make_prompt(
        gateway,
        "vars",
        system(
            "{{a}} {{b}} {{c}}",
            variables=["a", "b", "c"],
            variables_schema={
                "type": "object",
                "properties": {
                    "a": {"type": "integer", "minimum": 1},
                    "b": {"type": "string", "maxLength": 3},
                },
            },
        ),
    )
    client = gateway.openai()
    with pytest.raises(openai.BadRequestError) as info:
        echo(client, {"X-Sluice-Prompt": "vars", "X-Sluice-Prompt-Variables": '{"b": "x"}'})
    assert info.value.code == "missing_variable"
    assert "a, c" in info.value.message  # every missing one is named

    bad = json.dumps({"a": 0, "b": "long", "c": 1})
    with pytest.raises(openai.BadRequestError) as info:
        echo(client, {"X-Sluice-Prompt": "vars", "X-Sluice-Prompt-Variables": bad})
    assert info.value.code == "invalid_variables"
    assert "a: 0 is less than the minimum of 1" in info.value.message
    assert "b: 'long' is too long" in info.value.message

    for not_object in ('["a"]', '"a"', "{not json"):
        with pytest.raises(openai.BadRequestError) as info:
            echo(client, {"X-Sluice-Prompt": "vars", "X-Sluice-Prompt-Variables": not_object})
        assert info.value.code == "invalid_request"
        assert "x-sluice-prompt-variables" in info.value.message.lower()


def test_large_variables_go_in_the_body_field(gateway: RunningGateway) -> None:
    make_prompt(gateway, "big", system("{{text}}", variables=["text"]))
    client = gateway.openai()
    large = {"text": "x" * 9000}
    with pytest.raises(openai.BadRequestError) as info:
        echo(client, {"X-Sluice-Prompt": "big", "X-Sluice-Prompt-Variables": json.dumps(large)})
    assert "8 KiB" in info.value.message and "sluice" in info.value.message
    received, _ = echo(
        client, {"X-Sluice-Prompt": "big"}, extra_body={"sluice": {"variables": large}}
    )
    assert system_text(received) == "x" * 9000


def test_unknown_slug_version_and_label(gateway: RunningGateway) -> None:
    make_prompt(gateway, "known", system("hi"))
    client = gateway.openai()
    with pytest.raises(openai.NotFoundError) as info:
        echo(client, {"X-Sluice-Prompt": "nope"})
    assert info.value.code == "prompt_not_found"
    with pytest.raises(openai.NotFoundError) as info:
        echo(client, {"X-Sluice-Prompt": "known", "X-Sluice-Prompt-Version": "9"})
    assert info.value.code == "version_not_found"
    assert "latest is 1" in info.value.message
    with pytest.raises(openai.NotFoundError) as info:
        echo(client, {"X-Sluice-Prompt": "known", "X-Sluice-Prompt-Label": "canary"})
    assert info.value.code == "version_not_found"
    assert "no label 'canary'" in info.value.message
    with pytest.raises(openai.BadRequestError):
        echo(client, {"X-Sluice-Prompt": "known", "X-Sluice-Prompt-Version": "two"})
    response = gateway.admin.post("/admin/prompts", json={"slug": "empty"})
    assert response.status_code == 201
    with pytest.raises(openai.NotFoundError) as info:
        echo(client, {"X-Sluice-Prompt": "empty"})
    assert info.value.code == "version_not_found" and "no versions yet" in info.value.message


def test_log_row_references_the_version_and_the_admin_view_renders_it(
    gateway: RunningGateway,
) -> None:
    make_prompt(gateway, "logged", system("Secret wording for {{who}}.", variables=["who"]))
    echo(
        gateway.openai(),
        {
            "X-Sluice-Prompt": "logged",
            "X-Sluice-Prompt-Variables": '{"who": "Ann"}',
            "X-Sluice-Request-Id": "prompt-log-1",
        },
    )
    [row] = gateway.wait_for_rows(1, prompt="logged")
    version = gateway.admin.get("/admin/prompts/logged/versions/1").json()
    assert row["prompt_slug"] == "logged"
    assert row["prompt_version"] == 1
    assert row["prompt_version_id"] == version["id"]
    assert row["variables"] == {"who": "Ann"}
    # The rendered wording is not stored again: only the client's own request is.
    assert "Secret wording" not in json.dumps(row["request_body"])
    detail = gateway.admin.get("/admin/responses/prompt-log-1").json()
    assert detail["rendered_request"]["messages"] == [
        {"role": "system", "content": "Secret wording for Ann."},
        {"role": "user", "content": "#echo"},
    ]
    assert detail["rendered_request"]["model"] == "gpt-4o-mini"


def test_failed_resolution_is_logged_as_an_error(gateway: RunningGateway) -> None:
    with pytest.raises(openai.NotFoundError):
        echo(gateway.openai(), {"X-Sluice-Prompt": "missing-one"})
    [row] = gateway.wait_for_rows(1, status="error")
    assert row["error_code"] == "prompt_not_found"
    assert row["status_code"] == 404
