"""Templates: `{{name}}` and nothing else, rendered once, never re-parsed."""

from __future__ import annotations

from gateway.prompts.template import Template, compile_messages, placeholders_in


def test_spacing_inside_braces_is_allowed_and_names_repeat() -> None:
    template = Template.parse("{{name}}, {{ name }} and {{  other\t}}!")
    assert template.names == ("name", "name", "other")
    assert template.render({"name": "Ann", "other": "Bo"}) == "Ann, Ann and Bo!"


def test_values_are_never_rendered_again() -> None:
    template = Template.parse("Hello {{name}}, {{greeting}}")
    rendered = template.render({"name": "{{greeting}}", "greeting": "{{ name }}"})
    assert rendered == "Hello {{greeting}}, {{ name }}"


def test_text_that_is_not_a_placeholder_stays_literal() -> None:
    text = "{not} {{}} {{ two words }} {{1abc}} {{a.b}} {{{x}}} {% if x %} ${x}"
    template = Template.parse(text)
    assert template.names == ("x",)  # only the inner `{{x}}` of `{{{x}}}`
    assert template.render({"x": "X"}) == text.replace("{{x}}", "X")


def test_non_string_values_are_written_as_json() -> None:
    template = Template.parse("{{n}} {{f}} {{b}} {{l}} {{o}} {{z}}")
    values = {"n": 3, "f": 1.5, "b": True, "l": [1, "a"], "o": {"k": None}, "z": None}
    assert template.render(values) == '3 1.5 true [1,"a"] {"k":null} null'


def test_code_in_values_is_data() -> None:
    template = Template.parse("{{x}}")
    payload = "{{ ''.__class__.__mro__ }} {% for x in y %}{{ x }}{% endfor %} ${{7*7}}"
    assert template.render({"x": payload}) == payload


def test_messages_compile_once_and_render_fresh_dicts() -> None:
    source = [
        {"role": "system", "content": "You are {{who}}."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Q: {{ q }}"},
                {"type": "image_url", "image_url": {"url": "u"}},
            ],
        },
        {"role": "assistant", "content": "plain", "name": "helper"},
    ]
    compiled = compile_messages(source)
    first = compiled.render({"who": "a judge", "q": "why?"})
    assert first == [
        {"role": "system", "content": "You are a judge."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Q: why?"},
                {"type": "image_url", "image_url": {"url": "u"}},
            ],
        },
        {"role": "assistant", "content": "plain", "name": "helper"},
    ]
    first[2]["content"] = "changed"
    assert compiled.render({"who": "x", "q": "y"})[2]["content"] == "plain"
    assert source[0]["content"] == "You are {{who}}."


def test_placeholders_are_found_with_their_first_location() -> None:
    messages = [
        {"role": "system", "content": "{{a}}"},
        {"role": "user", "content": [{"type": "text", "text": "{{b}} {{a}}"}]},
    ]
    assert placeholders_in(messages) == {
        "a": "messages[0].content",
        "b": "messages[1].content[0].text",
    }
