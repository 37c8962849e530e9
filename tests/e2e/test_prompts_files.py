"""`sluice prompts push` and `pull` against a running gateway: idempotent, all or nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.prompts.sync import AdminEndpoint, pull, push
from tests.conftest import ADMIN_TOKEN, RunningGateway
from tests.e2e.prompts_support import echo, system_text

SUPPORT = """\
description: Replies to support tickets
tags: [support]
versions:
  - note: first wording
    labels: [production]
    variables: [customer]
    messages:
      - role: system
        content: "You help {{customer}}."
  - model: gpt-4o
    params: {temperature: 0.2}
    labels: [staging]
    variables: [customer]
    messages:
      - role: system
        content: |
          You help {{ customer }}.
          Be brief.
"""

SUMMARY = '''\
description = "Summaries"

[[versions]]
labels = ["production"]
variables = ["text"]
variables_schema = { type = "object", properties = { text = { type = "string" } } }

[[versions.messages]]
role = "system"
content = """
Summarise:
{{text}}"""
'''


def _endpoint(gateway: RunningGateway) -> AdminEndpoint:
    return AdminEndpoint(gateway.base_url, ADMIN_TOKEN)


def _push(gateway: RunningGateway, directory: Path, **kwargs: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = push(directory, _endpoint(gateway), out=out, err=err, **kwargs)  # type: ignore[arg-type]
    return code, out.getvalue(), err.getvalue()


def _pull(gateway: RunningGateway, directory: Path, **kwargs: object) -> str:
    out = io.StringIO()
    assert pull(directory, _endpoint(gateway), out=out, err=io.StringIO(), **kwargs) == 0  # type: ignore[arg-type]
    return out.getvalue()


def _files(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.iterdir())}


@pytest.fixture
def prompt_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "prompts"
    directory.mkdir()
    (directory / "support-reply.yaml").write_text(SUPPORT)
    (directory / "summary.toml").write_text(SUMMARY)
    return directory


def test_push_is_idempotent_and_pull_round_trips(
    gateway: RunningGateway, prompt_dir: Path, tmp_path: Path
) -> None:
    code, out, err = _push(gateway, prompt_dir, created_by="ci")
    assert code == 0, err
    assert "support-reply: created, new versions 1, 2, production -> 1, staging -> 2" in out
    assert "summary: created, new version 1, production -> 1" in out
    assert gateway.admin.get("/admin/prompts/support-reply/versions/1").json()["created_by"] == "ci"

    code, out, _ = _push(gateway, prompt_dir)
    assert code == 0 and out.splitlines() == ["summary: unchanged", "support-reply: unchanged"]
    assert gateway.admin.get("/admin/prompts/support-reply").json()["latest_version"] == 2

    pulled = tmp_path / "pulled"
    _pull(gateway, pulled)
    assert sorted(_files(pulled)) == ["summary.yaml", "support-reply.yaml"]
    code, out, _ = _push(gateway, pulled)  # what pull wrote is what the gateway has
    assert code == 0 and "created" not in out and "->" not in out
    assert "Be brief." in _files(pulled)["support-reply.yaml"]
    assert "content: |" in _files(pulled)["support-reply.yaml"]  # readable in a diff
    again = _pull(gateway, pulled)
    assert again.count("unchanged") == 2

    # Pulling into the original directory keeps each file's format.
    _pull(gateway, prompt_dir)
    assert sorted(_files(prompt_dir)) == ["summary.toml", "support-reply.yaml"]
    assert _push(gateway, prompt_dir)[1].count("unchanged") == 2

    received, _ = echo(
        gateway.openai(),
        {"X-Sluice-Prompt": "summary", "X-Sluice-Prompt-Variables": '{"text": "long story"}'},
    )
    assert system_text(received) == "Summarise:\nlong story"


def test_an_edit_in_a_file_becomes_a_new_version_and_moves_labels(
    gateway: RunningGateway, prompt_dir: Path
) -> None:
    assert _push(gateway, prompt_dir)[0] == 0
    edited = SUPPORT.replace("    labels: [production]\n", "").replace(
        "labels: [staging]", "labels: [production, staging]"
    )
    edited += (
        "  - note: third\n"
        "    labels: [canary]\n"
        "    variables: [customer]\n"
        "    messages:\n"
        "      - role: system\n"
        '        content: "Greet {{customer}} warmly."\n'
    )
    (prompt_dir / "support-reply.yaml").write_text(edited)
    code, out, err = _push(gateway, prompt_dir, dry_run=True)
    assert code == 0, err
    assert "support-reply: new version 3, canary -> 3, production -> 2 (would be applied)" in out
    assert gateway.admin.get("/admin/prompts/support-reply").json()["latest_version"] == 2
    code, out, _ = _push(gateway, prompt_dir)
    assert "support-reply: new version 3, canary -> 3, production -> 2" in out
    received, _ = echo(
        gateway.openai(),
        {"X-Sluice-Prompt": "support-reply", "X-Sluice-Prompt-Variables": '{"customer": "Bo"}'},
    )
    assert system_text(received) == "You help Bo.\nBe brief.\n"


def test_invalid_files_are_reported_with_lines_and_nothing_is_pushed(
    gateway: RunningGateway, prompt_dir: Path
) -> None:
    (prompt_dir / "broken.yaml").write_text(
        "versions:\n  - variables: []\n    messages:\n      - role: system\n"
        "        content: 'Hi {{name}}'\n"
    )
    (prompt_dir / "bad-toml.toml").write_text('description = "unterminated\n')
    code, out, err = _push(gateway, prompt_dir)
    assert code == 1 and out == ""
    assert f"{prompt_dir / 'broken.yaml'}:5: Placeholder {{{{name}}}} is not declared" in err
    assert f"{prompt_dir / 'bad-toml.toml'}:1: not valid TOML" in err
    assert "nothing was pushed" in err
    assert gateway.admin.get("/admin/prompts").json()["data"] == []


def test_a_gateway_side_refusal_points_at_the_file_and_applies_nothing(
    gateway: RunningGateway, prompt_dir: Path
) -> None:
    gateway.admin.post("/admin/prompts", json={"slug": "support-reply"})
    gateway.admin.patch("/admin/prompts/support-reply", json={"archived": True})
    code, _, err = _push(gateway, prompt_dir)
    assert code == 1
    assert f"{prompt_dir / 'support-reply.yaml'}:1: Prompt 'support-reply' is archived" in err
    assert gateway.admin.get("/admin/prompts/summary").status_code == 404  # nothing half-applied


def test_the_command_line(
    gateway: RunningGateway, prompt_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--url", gateway.base_url, "--token", ADMIN_TOKEN]
    assert main(["prompts", "push", str(prompt_dir), *args]) == 0
    assert "support-reply: created" in capsys.readouterr().out
    target = tmp_path / "as-toml"
    assert (
        main(["prompts", "pull", str(target), "--format", "toml", "--prompt", "summary", *args])
        == 0
    )
    assert sorted(_files(target)) == ["summary.toml"]
    assert main(["prompts", "push", str(target), *args]) == 0
    assert "summary: unchanged" in capsys.readouterr().out
    assert main(["prompts", "push", str(tmp_path / "missing"), *args]) == 1
