"""Prompt files against hostile input: YAML alias bombs in push, slugs that climb out of the
target directory in pull (from a gateway that should never send them, but might)."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from gateway.prompts.files import PromptFileError, read_prompt_file
from gateway.prompts.sync import AdminEndpoint, pull, push

BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(97 + i)}: &{chr(97 + i)} [{','.join(['*' + chr(96 + i)] * 9)}]" for i in range(1, 9)]
    + ["versions: *i"]
)


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(BOMB + "\n")
    err = io.StringIO()
    tracemalloc.start()
    try:
        code = push(tmp_path, AdminEndpoint("http://127.0.0.1:9", "t"), err=err)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 1
    first = err.getvalue().splitlines()[0]
    assert first.endswith("bomb.yaml:2: not valid YAML: YAML aliases (*a) are not allowed in "
                          "prompt files: write the value out")  # fmt: skip
    assert peak < 5_000_000  # nine levels of nine would be hundreds of MB


def test_anchors_without_aliases_still_load(tmp_path: Path) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text("versions:\n  - &first\n    messages:\n      - {role: system, content: hi}\n")
    assert read_prompt_file(path).bundle.slug == "plain"
    path.write_text(path.read_text() + "  - *first\n")
    with pytest.raises(PromptFileError, match=r"aliases \(\*first\)"):
        read_prompt_file(path)


def _export(slugs: list[str]) -> httpx.MockTransport:
    bundles: list[dict[str, Any]] = [
        {"slug": slug, "versions": [{"messages": [{"role": "system", "content": "x"}]}]}
        for slug in slugs
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=msgspec.json.encode({"prompts": bundles}))

    return httpx.MockTransport(answer)


@pytest.mark.parametrize("evil", ["../../escaped", "/tmp/sluice-absolute", "a/../../b", ".."])
def test_pull_writes_only_inside_its_directory(tmp_path: Path, evil: str) -> None:
    target = tmp_path / "work" / "prompts"
    err = io.StringIO()
    endpoint = AdminEndpoint("http://gateway", "t", transport=_export(["good", evil]))
    assert pull(target, endpoint, out=io.StringIO(), err=err) == 1
    assert f"refusing to write prompt {evil!r}" in err.getvalue()
    assert "nothing was written" in err.getvalue()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == []
    assert not Path("/tmp/sluice-absolute.yaml").exists()


def test_pull_refuses_a_file_that_links_out_of_the_directory(tmp_path: Path) -> None:
    target, outside = tmp_path / "prompts", tmp_path / "outside.yaml"
    target.mkdir()
    outside.write_text("keep me\n")
    (target / "linked.yaml").symlink_to(outside)
    err = io.StringIO()
    endpoint = AdminEndpoint("http://gateway", "t", transport=_export(["linked"]))
    assert pull(target, endpoint, out=io.StringIO(), err=err) == 1
    assert "refusing to write prompt 'linked'" in err.getvalue()
    assert outside.read_text() == "keep me\n"
