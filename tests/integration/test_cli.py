"""The command line as people run it: real processes, real databases."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

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
