"""The command line as people run it: real processes, real databases."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import psycopg
import pytest

from gateway.cli import build_parser
from tests.conftest import PG_ADMIN_URL

SLUICE = str(Path(sys.executable).parent / "sluice")


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    name = f"sluice_cli_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SLUICE, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_refuses_a_database_behind_its_migrations(empty_postgres: str) -> None:
    refused = _run(["serve"], SLUICE_DATABASE_URL=empty_postgres, SLUICE_PORT="1")
    assert refused.returncode == 2
    assert "run: sluice migrate" in refused.stderr
    migrated = _run(["migrate"], SLUICE_DATABASE_URL=empty_postgres)
    assert migrated.returncode == 0, migrated.stderr
    assert "database at revision" in migrated.stdout


def test_bad_settings_are_listed_and_nothing_starts() -> None:
    result = _run(["serve"], SLUICE_PORT="http", SLUICE_REDIS_URL="nope://x")
    assert result.returncode == 2
    assert "SLUICE_PORT='http'" in result.stderr
    assert "SLUICE_REDIS_URL='nope://x'" in result.stderr
    assert "Traceback" not in result.stderr


# -- help and start-up cost -------------------------------------------------------------------

# What `--help` must not load: each costs tens to hundreds of milliseconds at start-up, and
# the app (gateway.app) pulls in all of them. Timing lives in bench/cli_help.py, not here.
HEAVY = (
    "gateway.app",
    "litestar",
    "sqlalchemy",
    "uvicorn",
    "httpx",
    "aiohttp",
    "redis",
    "openai",
    "rich",
    "msgspec",
    "alembic",
    "tiktoken",
)

_PROBE = """
import json, sys
from gateway.cli import main
try:
    main(sys.argv[1:] + ["--help"])
    code = None
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split(".")[0] if not m.startswith("gateway.") else m for m in sys.modules})
print(json.dumps({"code": code, "modules": heavy}))
"""


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    """Every command path of the parser: [], ["serve"], ["keys"], ["keys", "create"], ..."""
    found = [list(prefix)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.extend(_commands(sub, (*prefix, name)))
    return found


def test_every_command_has_help_and_loads_nothing_heavy_for_it() -> None:
    commands = _commands(build_parser())
    assert ["keys", "create"] in commands and ["pricing", "set"] in commands
    for command in commands:
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE, *command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert probe.returncode == 0, probe.stderr
        result = json.loads(probe.stdout.splitlines()[-1])
        assert result["code"] == 0, command
        loaded = [m for m in HEAVY if m in result["modules"]]
        assert loaded == [], f"sluice {' '.join(command)} --help loads {loaded}"


def test_help_and_version_from_the_installed_script() -> None:
    helped = _run(["--help"])
    assert helped.returncode == 0
    for command in ("serve", "worker", "migrate", "prompts", "test", "keys", "budgets", "pricing"):
        assert command in helped.stdout
    version = _run(["--version"])
    assert version.returncode == 0
    assert version.stdout.strip() == f"sluice {metadata.version('sluice')}"


# -- bad settings: one line each, before anything starts ---------------------------------------


def _error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stderr.strip().splitlines()


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ("[routes\nmodels = 1", "not valid TOML"),
        ('[[routes]]\nmodels = ["gpt-*"]\nupstream = "nowhere"\n', "'nowhere' is not defined"),
        ('[pricing."m"]\ninput = "cheap"\noutput = 1\n', '[pricing."m"].input'),
    ],
)
def test_a_bad_config_file_is_one_line_and_exit_2_before_listening(
    tmp_path: Path, config: str, problem: str
) -> None:
    path = tmp_path / "sluice.toml"
    path.write_text(config)
    result = _run(
        ["serve"],
        SLUICE_CONFIG=str(path),
        SLUICE_PORT="1",
        SLUICE_DATABASE_URL=f"sqlite:///{tmp_path / 'never.db'}",
    )
    assert result.returncode == 2
    [line] = _error_lines(result)
    assert line.startswith(f"error: invalid SLUICE_CONFIG {path}: ")
    assert problem in line
    assert "listening" not in result.stderr
    assert not (tmp_path / "never.db").exists()  # refused before touching the database


def test_a_missing_config_file_and_other_bad_settings_are_one_line_each(tmp_path: Path) -> None:
    missing = _run(["serve"], SLUICE_CONFIG=str(tmp_path / "nope.toml"), SLUICE_PORT="1")
    assert missing.returncode == 2
    [line] = _error_lines(missing)
    assert line.startswith("error: SLUICE_CONFIG=") and "nope.toml" in line
    both = _run(["worker"], SLUICE_PORT="http", SLUICE_REDIS_URL="nope://x")
    assert both.returncode == 2
    lines = _error_lines(both)
    assert len(lines) == 2 and all(line.startswith("error: SLUICE_") for line in lines)
