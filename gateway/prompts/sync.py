"""`sluice prompts push DIR` and `pull DIR`: prompt files to and from a running gateway.

Both talk to the admin API (`SLUICE_URL`, `SLUICE_ADMIN_TOKEN`), the way a CI job does: push
reads and checks every file first (any problem stops it, reported as `file:line: reason`),
then sends them all in one `POST /admin/prompts:import`, which the gateway applies in one
transaction. Pull writes one file per prompt, keeping each existing file's format.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
import msgspec

from gateway.prompts.files import EXTENSIONS, PromptFile, PromptFileError, read_prompt_dir
from gateway.prompts.filewriter import dump_toml, dump_yaml
from gateway.prompts.spec import SLUG

__all__ = ["AdminEndpoint", "pull", "push"]

_PROMPT_INDEX = "prompts["


@dataclass(frozen=True, slots=True)
class AdminEndpoint:
    url: str
    token: str
    transport: httpx.BaseTransport | None = None
    """Tests may route the client elsewhere; the CLI uses the network."""

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url.rstrip("/"),
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
            transport=self.transport,
        )


def _api_error(response: httpx.Response) -> tuple[str, str | None]:
    try:
        error = response.json()["error"]
        return str(error["message"]), error.get("param")
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:300]}", None


def _locate_api_error(files: list[PromptFile], message: str, param: str | None) -> str:
    """Turn `prompts[2].versions[0].content` back into `file:line`."""
    if param and param.startswith(_PROMPT_INDEX):
        index_text, _, rest = param[len(_PROMPT_INDEX) :].partition("]")
        if index_text.isdigit() and int(index_text) < len(files):
            return str(files[int(index_text)].problem(rest.lstrip("."), message))
    return message


def _describe(outcome: dict[str, Any], dry_run: bool) -> str:
    verb = "would be" if dry_run else ""
    parts = []
    if outcome.get("created"):
        parts.append("created")
    if outcome.get("updated"):
        parts.append("description/tags updated")
    if outcome.get("versions_created"):
        numbers = ", ".join(str(n) for n in outcome["versions_created"])
        parts.append(f"new version{'s' if len(outcome['versions_created']) > 1 else ''} {numbers}")
    for label, number in sorted(outcome.get("labels_moved", {}).items()):
        parts.append(f"{label} -> {number}")
    summary = ", ".join(parts) if parts else "unchanged"
    return f"{outcome['slug']}: {summary}" + (f" ({verb} applied)" if verb and parts else "")


def push(
    directory: Path,
    endpoint: AdminEndpoint,
    *,
    dry_run: bool = False,
    created_by: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Exit code 0 when applied (or nothing to do), 1 on any problem; nothing half-applied."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        files = read_prompt_dir(directory)
    except PromptFileError as exc:
        for problem in exc.problems:
            print(problem, file=err)
        print(f"{len(exc.problems)} problem(s); nothing was pushed.", file=err)
        return 1
    if not files:
        print(f"no prompt files ({', '.join(EXTENSIONS)}) in {directory}", file=err)
        return 1
    payload = {
        "prompts": [msgspec.to_builtins(f.bundle) for f in files],
        "dry_run": dry_run,
        "created_by": created_by,
    }
    try:
        with endpoint.client() as client:
            response = client.post("/admin/prompts:import", content=msgspec.json.encode(payload))
    except httpx.HTTPError as exc:
        print(f"cannot reach the gateway at {endpoint.url}: {exc}", file=err)
        return 1
    if response.status_code != 200:
        message, param = _api_error(response)
        print(_locate_api_error(files, message, param), file=err)
        print("nothing was pushed.", file=err)
        return 1
    report = response.json()
    for outcome in report["prompts"]:
        print(_describe(outcome, dry_run), file=out)
    return 0


def _existing_files(directory: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if directory.is_dir():
        for path in sorted(directory.rglob("*")):
            if path.suffix in EXTENSIONS and path.is_file():
                found.setdefault(path.stem, path)
    return found


def _inside(root: Path, path: Path, slug: object) -> bool:
    """A slug from the gateway names one file directly in `root` (or an existing file under
    it): `../x`, `/tmp/x` or a symlink out of the directory never gets written."""
    if not isinstance(slug, str) or not SLUG.fullmatch(slug):
        return False
    return path.resolve().is_relative_to(root)


Writer = Callable[[dict[str, Any]], str]
_WRITERS: dict[str, Writer] = {".yaml": dump_yaml, ".yml": dump_yaml, ".toml": dump_toml}


def pull(
    directory: Path,
    endpoint: AdminEndpoint,
    *,
    file_format: str = "yaml",
    prompts: list[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Write every live prompt (or those named) as a file; existing files keep their format."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        with endpoint.client() as client:
            response = client.get(
                "/admin/prompts:export", params=[("prompt", p) for p in prompts or []]
            )
    except httpx.HTTPError as exc:
        print(f"cannot reach the gateway at {endpoint.url}: {exc}", file=err)
        return 1
    if response.status_code != 200:
        print(_api_error(response)[0], file=err)
        return 1
    bundles: list[dict[str, Any]] = response.json()["prompts"]
    existing = _existing_files(directory)
    rendered: dict[Path, str] = {}
    root = directory.resolve()
    for bundle in bundles:
        slug = bundle["slug"]
        path = existing.get(slug) or directory / f"{slug}.{file_format}"
        if not _inside(root, path, slug):
            print(
                f"refusing to write prompt {slug!r}: its file {path} would be outside "
                f"{directory}; nothing was written.",
                file=err,
            )
            return 1
        try:
            rendered[path] = _WRITERS[path.suffix](bundle)
        except ValueError as exc:
            print(f"{path}: {exc}; pull it as YAML instead (--format yaml).", file=err)
            return 1
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in rendered.items():
        unchanged = path.exists() and path.read_text(encoding="utf-8") == text
        if not unchanged:
            path.write_text(text, encoding="utf-8")
        print(f"{path}: {'unchanged' if unchanged else 'written'}", file=out)
    return 0
