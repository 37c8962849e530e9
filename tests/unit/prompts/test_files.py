"""Prompt files: parsed from YAML or TOML, every problem reported with file and line."""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path

import pytest
import yaml

from gateway.prompts.files import (
    PromptFileError,
    parse_param_path,
    read_prompt_dir,
    read_prompt_file,
)
from gateway.prompts.filewriter import dump_toml, dump_yaml

GOOD_YAML = """\
description: Replies to support tickets
tags: [support]
versions:
  - note: first
    labels: [production]
    variables: [customer]
    messages:
      - role: system
        content: "You help {{customer}}."
  - model: gpt-4o
    params: {temperature: 0.2}
    variables: [customer]
    messages:
      - role: system
        content: |
          You help {{ customer }}.
          Be brief.
"""

GOOD_TOML = '''\
description = "Summaries"

[[versions]]
labels = ["production"]
variables = ["text"]

[[versions.messages]]
role = "system"
content = """
Summarise:
{{text}}"""
'''


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(PromptFileError) as info:
        read_prompt_file(path)
    return [str(p) for p in info.value.problems]


def test_good_files_parse_with_the_slug_from_the_file_name(tmp_path: Path) -> None:
    _write(tmp_path, "support-reply.yaml", GOOD_YAML)
    _write(tmp_path, "summary.toml", GOOD_TOML)
    files = read_prompt_dir(tmp_path)
    assert [f.bundle.slug for f in files] == ["summary", "support-reply"]
    support = files[1].bundle
    assert support.versions[1].messages[0].content == "You help {{ customer }}.\nBe brief.\n"
    assert files[0].bundle.versions[0].messages[0].content == "Summarise:\n{{text}}"


def test_param_paths() -> None:
    assert parse_param_path("versions[1].messages[0].content") == (
        "versions",
        1,
        "messages",
        0,
        "content",
    )
    assert parse_param_path("") == ()


def test_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", "versions:\n  - messages: [\n    role: x\n")
    [problem] = _problems(path)
    assert problem.startswith(f"{path}:")
    assert "not valid YAML" in problem


def test_unquoted_braces_in_yaml_get_a_hint_and_the_line(tmp_path: Path) -> None:
    text = (
        "versions:\n  - variables: [q]\n    messages:\n      - role: user\n        content: {{q}}\n"
    )
    path = _write(tmp_path, "braces.yaml", text)
    [problem] = _problems(path)
    assert problem.startswith(f"{path}:5:")
    assert "put the text in quotes" in problem


def test_undeclared_placeholder_points_at_the_content_line(tmp_path: Path) -> None:
    text = GOOD_YAML.replace(
        "variables: [customer]\n    messages", "variables: []\n    messages", 1
    )
    path = _write(tmp_path, "support-reply.yaml", text)
    [problem] = _problems(path)
    assert problem.startswith(f"{path}:9:")
    assert "{{customer}}" in problem


def test_toml_errors_have_lines(tmp_path: Path) -> None:
    syntax = _write(tmp_path, "s.toml", 'description = "x\n')
    assert _problems(syntax)[0].startswith(f"{syntax}:1: not valid TOML")
    missing = _write(
        tmp_path, "summary.toml", GOOD_TOML.replace('variables = ["text"]', "variables = []")
    )
    [problem] = _problems(missing)
    assert problem.startswith(f"{missing}:9:")  # the content line of versions[0].messages[0]
    role = _write(tmp_path, "r.toml", GOOD_TOML.replace('role = "system"', 'role = "wizard"'))
    assert _problems(role)[0].startswith(f"{role}:8:")


def test_slug_must_match_the_file_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "one.yaml", "slug: two\n" + GOOD_YAML)
    [problem] = _problems(path)
    assert problem.startswith(f"{path}:1:") and "name the file two.yaml" in problem


def test_a_directory_reports_every_problem_and_duplicates(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", "versions: 3\n")
    _write(tmp_path, "b.yaml", "[1, 2]\n")
    (tmp_path / "sub").mkdir()
    _write(tmp_path, "ok.yaml", GOOD_YAML)
    _write(
        tmp_path / "sub", "ok.toml", GOOD_TOML.replace('description = "Summaries"', 'slug = "ok"')
    )
    _write(
        tmp_path,
        "label.yaml",
        GOOD_YAML.replace("  - model: gpt-4o", "  - model: gpt-4o\n    labels: [production]"),
    )
    with pytest.raises(PromptFileError) as info:
        read_prompt_dir(tmp_path)
    text = str(info.value)
    assert f"{tmp_path / 'a.yaml'}:1:" in text
    assert f"{tmp_path / 'b.yaml'}:1:" in text
    assert "is also defined in" in text
    assert "Label 'production' is on two versions" in text


def test_written_files_read_back_to_the_same_content(tmp_path: Path) -> None:
    bundle = {
        "slug": "tricky",
        "description": 'quotes " and \\ backslashes',
        "versions": [
            {
                "version": 1,
                "labels": ["production"],
                "params": {
                    "temperature": 0.5,
                    "stop": ["\n\n", "END"],
                    "logit_bias": {"50256": -100},
                },
                "variables": ["a"],
                "variables_schema": {
                    "type": "object",
                    "properties": {"a": {"type": "string", "maxLength": 5}},
                },
                "messages": [
                    {
                        "role": "system",
                        "content": 'Line one\n  indented "quoted" \\n literal\n\ttab\n',
                    },
                    {"role": "user", "content": [{"type": "text", "text": "{{a}}\n\n"}]},
                ],
            }
        ],
    }
    yaml_text = dump_yaml(bundle)
    toml_text = dump_toml(bundle)
    assert yaml.safe_load(yaml_text) == bundle
    assert tomllib.loads(toml_text) == bundle
    assert "text: |+" in yaml_text  # multi-line text stays readable in diffs
    for name, text in (("tricky.yaml", yaml_text), ("tricky.toml", toml_text)):
        path = tmp_path / name
        path.write_text(text)
        assert (
            read_prompt_file(path).bundle.versions[0].messages[0].content
            == bundle["versions"][0]["messages"][0]["content"]
        )


def test_toml_cannot_hold_null() -> None:
    bundle = {
        "slug": "n",
        "versions": [{"version": 1, "variables_schema": {"default": None}, "messages": []}],
    }
    with pytest.raises(ValueError, match="version 1: TOML has no null"):
        dump_toml(bundle)
