"""The prompt file in docs/prompts.md is one `sluice prompts push` accepts."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.prompts.files import read_prompt_file

DOCS = Path(__file__).resolve().parents[3] / "docs" / "prompts.md"


def test_the_documented_prompt_file_is_valid(tmp_path: Path) -> None:
    [block] = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    path = tmp_path / "support-reply.yaml"
    path.write_text(block)
    bundle = read_prompt_file(path).bundle
    assert bundle.slug == "support-reply"
    assert [v.labels for v in bundle.versions] == [["production"], ["staging"]]
