"""The README documents every setting the gateway reads and every route it serves."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from gateway.app import create_app
from gateway.settings import Settings, load_settings

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
