"""Reading prompt files (YAML or TOML, one prompt each) and pointing at the line of a problem.

A file holds a prompt bundle (see `bundle.py`); its slug defaults to the file name. Every file
of a directory is read and checked before anything is sent anywhere, and every problem is
reported as `file:line: reason`, so a pull request review shows all of them at once.

YAML aliases (`*name`) are refused: a few lines of nested aliases expand to gigabytes (the
"billion laughs"), and a prompt file has no need for them.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import yaml

from gateway.errors import InvalidRequest, describe_validation_error
from gateway.prompts.bundle import PromptBundle, checked_bundles

__all__ = [
    "EXTENSIONS",
    "FileProblem",
    "PromptFile",
    "PromptFileError",
    "parse_param_path",
    "read_prompt_dir",
    "read_prompt_file",
]

EXTENSIONS = (".yaml", ".yml", ".toml")
PathStep = str | int
Locator = Callable[[tuple[PathStep, ...]], int | None]

_BRACE_HINT = " (YAML reads an unquoted {{...}} as a mapping: put the text in quotes)"
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class FileProblem:
    path: Path
    line: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line or 1}: {self.reason}"


class PromptFileError(Exception):
    def __init__(self, problems: list[FileProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class PromptFile:
    path: Path
    bundle: PromptBundle
    locate: Locator

    def problem(self, param: str | None, reason: str) -> FileProblem:
        """A problem at an API error's `param` (a path such as `versions[0].messages`)."""
        return FileProblem(self.path, self.locate(parse_param_path(param or "")), reason)


def parse_param_path(param: str) -> tuple[PathStep, ...]:
    return tuple(
        int(index) if index else name for name, index in _STEP.findall(param) if name or index
    )


# -- YAML ------------------------------------------------------------------------------------


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that stops at the first alias, before anything is expanded."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None,
                None,
                f"YAML aliases (*{event.anchor}) are not allowed in prompt files: "
                "write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def _yaml_locator(text: str) -> Locator:
    root = yaml.compose(text, Loader=_NoAliasLoader)

    def locate(path: tuple[PathStep, ...]) -> int | None:
        node: Any = root
        line = None if node is None else node.start_mark.line + 1
        for step in path:
            if isinstance(node, yaml.MappingNode):
                match = next((kv for kv in node.value if kv[0].value == step), None)
                if match is None:
                    return line
                line = match[0].start_mark.line + 1
                node = match[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                if step >= len(node.value):
                    return line
                node = node.value[step]
                line = node.start_mark.line + 1
            else:
                return line
        return line

    return locate


def _load_yaml(path: Path, text: str) -> tuple[Any, Locator]:
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        source = text.splitlines()[line - 1] if line and line <= len(text.splitlines()) else ""
        hint = _BRACE_HINT if "{{" in source else ""
        raise PromptFileError(
            [FileProblem(path, line, f"not valid YAML: {exc.problem or exc}{hint}")]
        ) from None
    except yaml.YAMLError as exc:
        raise PromptFileError([FileProblem(path, None, f"not valid YAML: {exc}")]) from None
    return data, _yaml_locator(text)


# -- TOML ------------------------------------------------------------------------------------

_TOML_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
_TOML_KEY = re.compile(r"""^\s*([A-Za-z0-9_"'-][A-Za-z0-9_. "'-]*?)\s*=(.*)$""")


def _toml_keys(raw: str) -> list[str]:
    return [part.strip().strip("\"'") for part in raw.split(".")]


def _toml_locator(text: str) -> Locator:
    """Map each table header and key line to its path; good enough for files we document."""
    entries: list[tuple[tuple[PathStep, ...], int]] = []
    counters: dict[tuple[PathStep, ...], int] = {}

    def resolve(keys: list[str]) -> tuple[PathStep, ...]:
        path: list[PathStep] = []
        for key in keys:
            path.append(key)
            if tuple(path) in counters:
                path.append(counters[tuple(path)] - 1)
        return tuple(path)

    table: tuple[PathStep, ...] = ()
    open_string: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if open_string is not None:
            if line.count(open_string) % 2 == 1:
                open_string = None
            continue
        header = _TOML_HEADER.match(line)
        if header:
            keys = _toml_keys(header.group(2))
            if header.group(1) == "[[":
                base = (*resolve(keys[:-1]), keys[-1])
                counters[base] = counters.get(base, 0) + 1
                table = (*base, counters[base] - 1)
            else:
                table = resolve(keys)
            entries.append((table, number))
            continue
        key = _TOML_KEY.match(line)
        if key:
            entries.append(((*table, *_toml_keys(key.group(1))), number))
            for quote in ('"""', "'''"):
                if key.group(2).count(quote) % 2 == 1:
                    open_string = quote

    def locate(path: tuple[PathStep, ...]) -> int | None:
        best, best_line = -1, None
        for entry, line in entries:
            shared = 0
            for a, b in zip(entry, path, strict=False):
                if a != b:
                    break
                shared += 1
            if shared == len(entry) and shared > best:
                best, best_line = shared, line
        return best_line

    return locate


def _load_toml(path: Path, text: str) -> tuple[Any, Locator]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = int(found.group(1)) if found else None
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise PromptFileError([FileProblem(path, line, f"not valid TOML: {reason}")]) from None
    return data, _toml_locator(text)


# -- files -----------------------------------------------------------------------------------


def read_prompt_file(path: Path) -> PromptFile:
    """Parse and check one prompt file, or raise PromptFileError naming file, line and reason."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptFileError([FileProblem(path, None, f"cannot read: {exc}")]) from None
    load = _load_toml if path.suffix == ".toml" else _load_yaml
    data, locate = load(path, text)
    if not isinstance(data, dict):
        raise PromptFileError(
            [FileProblem(path, 1, "a prompt file holds one mapping: slug, versions, ...")]
        )
    slug = data.setdefault("slug", path.stem)
    if slug != path.stem:
        raise PromptFileError(
            [
                FileProblem(
                    path,
                    locate(("slug",)),
                    f"slug '{slug}' does not match the file name: name the file {slug}"
                    f"{path.suffix}",
                )
            ]
        )
    try:
        bundle = msgspec.convert(data, PromptBundle)
    except msgspec.ValidationError as exc:
        message, param = describe_validation_error(exc)
        steps = parse_param_path(param or "")
        hint = _yaml_brace_hint(data, steps) if path.suffix != ".toml" else ""
        raise PromptFileError([FileProblem(path, locate(steps), message + hint)]) from None
    prompt_file = PromptFile(path, bundle, locate)
    try:
        checked_bundles([bundle])
    except InvalidRequest as exc:
        param = (exc.param or "").removeprefix("prompts[0]").lstrip(".")
        raise PromptFileError([prompt_file.problem(param, exc.message)]) from None
    return prompt_file


def _yaml_brace_hint(data: Any, steps: tuple[PathStep, ...]) -> str:
    node = data
    for step in steps:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return ""
    if isinstance(node, dict) and steps and steps[-1] == "content":
        return _BRACE_HINT
    return ""


def read_prompt_dir(directory: Path) -> list[PromptFile]:
    """Every prompt file under `directory`, all checked; PromptFileError lists every problem."""
    if not directory.is_dir():
        raise PromptFileError([FileProblem(directory, None, "not a directory")])
    paths = sorted(
        p
        for p in directory.rglob("*")
        if p.suffix in EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )
    files: list[PromptFile] = []
    problems: list[FileProblem] = []
    owners: dict[str, Path] = {}
    for path in paths:
        try:
            prompt_file = read_prompt_file(path)
        except PromptFileError as exc:
            problems.extend(exc.problems)
            continue
        slug = prompt_file.bundle.slug
        if slug in owners:
            problems.append(
                FileProblem(path, 1, f"prompt '{slug}' is also defined in {owners[slug]}")
            )
            continue
        owners[slug] = path
        files.append(prompt_file)
    if problems:
        raise PromptFileError(problems)
    return files
