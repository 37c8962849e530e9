"""Find the runnable examples of README.md and docs/*.md: every fenced bash/sh and python block.

A block that cannot run by its nature (it starts a long-running server, installs the package,
needs Docker) carries an HTML comment on the line before its fence, with the reason:

    <!-- docs-test: skip (starts a long-running server) -->

Anything else about a marker is a mistake the parser reports: an unknown directive, a skip
without a reason, or a marker that is not right before a runnable fence (a stale one). So is a
fence without a language, which would otherwise be neither run nor counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Block", "DocsError", "documentation_files", "parse_blocks"]

ROOT = Path(__file__).resolve().parents[2]
SHELL_LANGUAGES = frozenset({"bash", "sh", "shell"})
PYTHON_LANGUAGES = frozenset({"python", "py"})
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:(?P<body>.*?)-->\s*$")
_SKIP = re.compile(r"^\s*skip\s*\((?P<reason>.*\S.*)\)\s*$")


class DocsError(ValueError):
    """A docs-test marker the harness cannot honour; the message names file and line."""


@dataclass(frozen=True, slots=True)
class Block:
    path: Path
    line: int
    """1-based line of the opening fence."""
    language: str
    """"shell" or "python"."""
    code: str
    skip_reason: str | None

    @property
    def where(self) -> str:
        """`README.md:42`: the file (relative to the repository) and the fence's line."""
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{shown}:{self.line}"


def documentation_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def _language(info: str) -> str | None:
    word = info.strip().split(maxsplit=1)[0].lower() if info.strip() else ""
    if word in SHELL_LANGUAGES:
        return "shell"
    if word in PYTHON_LANGUAGES:
        return "python"
    return None


def parse_blocks(path: Path, text: str | None = None) -> list[Block]:
    """The shell and python blocks of one markdown file, in document order."""
    lines = (path.read_text() if text is None else text).splitlines()
    blocks: list[Block] = []
    pending: tuple[int, str] | None = None  # (line, skip reason) of a marker awaiting its fence
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = _MARKER.match(line)
        if marker:
            if pending is not None:
                raise DocsError(f"{path}:{pending[0]}: docs-test marker not followed by a fence")
            skip = _SKIP.match(marker["body"])
            if skip is None:
                raise DocsError(
                    f"{path}:{i + 1}: unknown docs-test marker {line.strip()!r}; "
                    "the only one is <!-- docs-test: skip (why it cannot run) -->"
                )
            pending = (i + 1, skip["reason"].strip())
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence is None:
            if pending is not None and line.strip():
                raise DocsError(f"{path}:{pending[0]}: docs-test marker not right before a fence")
            i += 1
            continue
        closing = re.compile(rf"^\s*{re.escape(fence['fence'][0])}{{{len(fence['fence'])},}}\s*$")
        end = i + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if not fence["info"].strip():
            # An unnamed fence would be neither run nor counted: a way round the harness.
            raise DocsError(
                f"{path}:{i + 1}: a fence without a language; name it (bash, python, text, ...)"
            )
        language = _language(fence["info"])
        if pending is not None and language is None:
            raise DocsError(f"{path}:{pending[0]}: docs-test marker on a block that never runs")
        if language is not None:
            indent = len(fence["indent"])
            body = [text_line[indent:] if text_line[:indent].isspace() else text_line
                    for text_line in lines[i + 1 : end]]  # fmt: skip
            blocks.append(
                Block(path, i + 1, language, "\n".join(body) + "\n", pending and pending[1])
            )
        pending = None
        i = end + 1
    if pending is not None:
        raise DocsError(f"{path}:{pending[0]}: docs-test marker not followed by a fence")
    return blocks
