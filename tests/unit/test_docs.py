"""The README documents every setting the gateway reads and every route it serves, and every
example in it and in docs/*.md is either run by tests/e2e/test_docs_examples.py or marked."""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.settings import Settings, load_settings
from tests.e2e.docs_blocks import Block, DocsError, documentation_files, parse_blocks

ROOT = Path(__file__).resolve().parents[2]


def _documentation() -> str:
    return "\n".join(
        path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    )


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        spec.metadata["env"]
        for section in dataclasses.fields(Settings)
        for spec in dataclasses.fields(section.default_factory)  # type: ignore[arg-type]
        if f"`{spec.metadata['env']}`" not in readme
    ]
    assert missing == [], f"settings missing from README.md: {missing}"


def test_every_route_is_documented() -> None:
    docs = re.sub(r"\{[^}]*\}", "{}", _documentation())
    app = create_app(load_settings({}))
    missing = []
    for route in app.routes:
        if route.path.startswith("/schema"):
            continue
        path = re.sub(r"\{[^}]*\}", "{}", route.path)
        if path not in docs:
            missing.append(route.path)
    assert missing == [], f"routes missing from README.md and docs/: {missing}"


# The examples' parser (tests/e2e/docs_blocks.py): what tests/e2e/test_docs_examples.py runs.


def _blocks(text: str) -> list[Block]:
    return parse_blocks(Path("guide.md"), textwrap.dedent(text).replace("~~~", "```"))


def test_every_example_is_run_or_marked_with_a_reason() -> None:
    """Parsing every file raises on a bad marker; each skip says why in its own words."""
    skipped = [
        (block.where, block.skip_reason)
        for path in documentation_files()
        for block in parse_blocks(path)
        if block.skip_reason is not None
    ]
    assert all(reason and len(reason) > 10 for _, reason in skipped), skipped


def test_shell_and_python_blocks_are_found_in_order_with_their_lines() -> None:
    blocks = _blocks(
        """\
        # Guide
        ~~~bash
        echo one
        ~~~
        ~~~toml
        x = 1
        ~~~
        - a list item:
          ~~~python
          print("two")
          ~~~
        ~~~sh
        echo three
        ~~~
        """
    )
    assert [(b.line, b.language, b.code) for b in blocks] == [
        (2, "shell", "echo one\n"),
        (9, "python", 'print("two")\n'),
        (12, "shell", "echo three\n"),
    ]


def test_a_skip_marker_applies_to_the_next_fence_only() -> None:
    blocks = _blocks(
        """\
        <!-- docs-test: skip (starts a long-running server) -->
        ~~~bash
        sluice serve
        ~~~
        ~~~bash
        sluice keys list
        ~~~
        """
    )
    assert [b.skip_reason for b in blocks] == ["starts a long-running server", None]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<!-- docs-test: skip -->\n```bash\nx\n```\n", "unknown docs-test marker"),
        ("<!-- docs-test: skip () -->\n```bash\nx\n```\n", "unknown docs-test marker"),
        ("<!-- docs-test: run -->\n```bash\nx\n```\n", "unknown docs-test marker"),
        ("<!-- docs-test: skip (why) -->\nSome text.\n```bash\nx\n```\n", "not right before"),
        ("<!-- docs-test: skip (why) -->\n```toml\nx = 1\n```\n", "a block that never runs"),
        ("text\n<!-- docs-test: skip (why) -->\n", "guide.md:2: docs-test marker not followed"),
        ("text\n\n```\nsluice serve\n```\n", "guide.md:3: a fence without a language"),
    ],
)
def test_a_marker_the_harness_cannot_honour_is_an_error(text: str, problem: str) -> None:
    with pytest.raises(DocsError, match=re.escape(problem)):
        parse_blocks(Path("guide.md"), text)
