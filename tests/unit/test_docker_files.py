"""The Dockerfile, docker-compose.yml and .dockerignore, checked as files (Docker may not run here).

The image's HEALTHCHECK asks the gateway's /healthz, and Docker applies it to every container
of the image: each compose service built from it that is not the gateway must say what its own
health means. The build context must leave out what the image never uses (.venv, .git, ...)
and keep everything the Dockerfile copies.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose


def _dockerfile_lines() -> list[str]:
    # Join continuation lines, so an instruction is one line.
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _copied_sources() -> list[str]:
    """What the Dockerfile copies from the build context (not from another stage)."""
    sources: list[str] = []
    for line in _dockerfile_lines():
        words = shlex.split(line)
        if words[0].upper() in {"COPY", "ADD"} and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def _ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception, pattern) per .dockerignore line, as Docker matches them."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        for part in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
                part, re.escape(part)
            )
        rules.append((exception, re.compile(regex)))
    return rules


def _excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker leaves a path out when the last rule matching it or a parent is no exception."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for exception, pattern in rules:
        if any(pattern.fullmatch(candidate) for candidate in candidates):
            excluded = not exception
    return excluded


def test_the_image_healthcheck_is_the_gateways() -> None:
    checks = [line for line in _dockerfile_lines() if line.upper().startswith("HEALTHCHECK")]
    assert len(checks) == 1 and "/healthz" in checks[0] and ":8080" in checks[0]


def test_no_other_service_of_the_image_inherits_the_gateway_healthcheck() -> None:
    services = _compose()["services"]
    built = {name: spec for name, spec in services.items() if "build" in spec}
    assert {"gateway", "worker", "migrate"} <= set(built)
    for name, spec in built.items():
        if name == "gateway":
            assert "healthcheck" not in spec, "the gateway keeps the image's /healthz check"
            continue
        check = spec.get("healthcheck")
        assert check, f"{name} would inherit the gateway's HTTP healthcheck"
        assert check.get("disable") is True or "test" in check, name
        if "test" in check:
            test = " ".join(check["test"])
            assert "8080" not in test and "healthz" not in test, f"{name}: {test}"


def test_the_worker_healthcheck_asks_the_port_its_command_opens() -> None:
    worker = _compose()["services"]["worker"]
    command = worker["command"]
    port = command[command.index("--metrics-port") + 1]
    test = " ".join(worker["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/metrics" in test
    assert worker["healthcheck"].get("disable") is not True


def test_the_build_context_leaves_out_what_the_image_never_uses() -> None:
    rules = _ignore_rules()
    for path in [
        ".git/config",
        ".venv/bin/python",
        "bench/.run/wrk.log",
        "gateway/__pycache__/app.cpython-311.pyc",
        "gateway/proxy/__pycache__/service.cpython-311.pyc",
        "tests/conftest.py",
        "sluice.db",
        "sluice.db-wal",
        ".env",
    ]:
        assert _excluded(path, rules), f"{path} would be sent to the Docker build"


def test_the_build_context_keeps_everything_the_dockerfile_copies() -> None:
    rules = _ignore_rules()
    sources = _copied_sources()
    assert {"pyproject.toml", "README.md", "gateway", "migrations"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"
        files = [source]
        for folder, dirs, names in os.walk(ROOT / source):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            files += [str((Path(folder) / n).relative_to(ROOT)) for n in names]
        kept_out = [f for f in files if not f.endswith(".pyc") and _excluded(f, rules)]
        assert kept_out == [], f".dockerignore leaves out files the image needs: {kept_out}"
