"""The client commands (`keys`, `budgets`, `pricing`, `test run`) as processes against a real
gateway served over HTTP: where they find it, what they print when piped, and Ctrl-C."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import ADMIN_TOKEN, RunningGateway
from tests.e2e.testing_support import add_case, get_run, suite_prompt, wait_for_run

SLUICE = str(Path(sys.executable).parent / "sluice")
_CLIENT_ENV = ("SLUICE_URL", "SLUICE_HOST", "SLUICE_PORT", "SLUICE_ADMIN_TOKEN")


def _env(**env: str) -> dict[str, str]:
    """This process's environment without any gateway address or token, plus `env`."""
    base = {k: v for k, v in os.environ.items() if k not in _CLIENT_ENV}
    return {**base, **env}


def _sluice(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SLUICE, *args], env=_env(**env), capture_output=True, text=True, timeout=60, check=False
    )


def _ok(args: list[str], **env: str) -> str:
    result = _sluice(args, **env)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr  # piped: no escape codes
    return result.stdout


def _tsv(text: str) -> list[dict[str, str]]:
    header, *rows = (line.split("\t") for line in text.splitlines())
    return [dict(zip(header, row, strict=True)) for row in rows]


@pytest.fixture
def via_env(sqlite_gateway: RunningGateway) -> dict[str, str]:
    return {"SLUICE_URL": sqlite_gateway.base_url, "SLUICE_ADMIN_TOKEN": ADMIN_TOKEN}


def test_keys_create_list_revoke(sqlite_gateway: RunningGateway, via_env: dict[str, str]) -> None:
    created = _sluice(["keys", "create", "my app"], **via_env)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("sk-sluice-") and "\n" not in secret  # the secret alone on stdout
    assert "shown once" in created.stderr
    models = sqlite_gateway.http.get("/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert models.status_code == 200

    [row] = _tsv(_ok(["keys", "list"], **via_env))
    assert (row["name"], row["revoked"]) == ("my app", "-")
    assert secret.startswith(row["prefix"])
    [listed] = json.loads(_ok(["keys", "list", "--json"], **via_env))
    assert listed["id"] == row["id"] and "key" not in listed  # never the secret

    assert f"revoked key {row['id']}" in _ok(["keys", "revoke", row["id"]], **via_env)
    [revoked] = json.loads(_ok(["keys", "list", "--json"], **via_env))
    assert revoked["revoked_at"] is not None
    again = _sluice(["keys", "revoke", "no-such-key"], **via_env)
    assert again.returncode == 2
    assert again.stderr.startswith("error: DELETE /admin/keys/no-such-key: HTTP 404")


def test_budgets_create_list_show_delete(
    sqlite_gateway: RunningGateway, via_env: dict[str, str]
) -> None:
    create = ["budgets", "create", "--scope", "user", "--value", "alice", "--period", "daily"]
    budget = json.loads(
        _ok([*create, "--limit", "1.50", "--soft-limit", "80", "--json"], **via_env)
    )
    assert (budget["scope_value"], budget["limit_usd"], budget["soft_limit_pct"]) == (
        "alice",
        1.5,
        80,
    )
    _ok(
        ["budgets", "create", "--scope", "global", "--period", "monthly", "--limit", "9"], **via_env
    )

    rows = _tsv(_ok(["budgets", "list"], **via_env))
    assert sorted(r["scope"] for r in rows) == ["global", "user"]
    [only] = json.loads(_ok(["budgets", "list", "--scope", "user", "--json"], **via_env))
    assert only["id"] == budget["id"]
    shown = dict(
        line.split("\t") for line in _ok(["budgets", "show", budget["id"]], **via_env).splitlines()
    )
    assert (shown["limit $"], shown["spent $"], shown["remaining $"]) == (
        "1.5",
        "0.000000",
        "1.500000",
    )

    assert (
        _ok(["budgets", "delete", budget["id"]], **via_env).strip()
        == f"deleted budget {budget['id']}"
    )
    gone = _sluice(["budgets", "show", budget["id"]], **via_env)
    assert gone.returncode == 2 and "HTTP 404" in gone.stderr
    refused = _sluice([*create, "--limit", "-1"], **via_env)
    assert refused.returncode == 2 and "is not an amount in USD" in refused.stderr


def test_pricing_show_and_set(sqlite_gateway: RunningGateway, via_env: dict[str, str]) -> None:
    table = json.loads(_ok(["pricing", "show", "--json"], **via_env))
    assert table["models"]["gpt-4o-mini"]["source"] == "default"

    price = ["--input", "0.5", "--output", "1.25", "--max-output-tokens", "2048"]
    [row] = _tsv(_ok(["pricing", "set", "house-model", *price], **via_env))
    assert (row["model"], row["input $"], row["output $"], row["source"]) == (
        "house-model",
        "0.5",
        "1.25",
        "admin",
    )
    assert sqlite_gateway.admin.get("/admin/pricing").json()["models"]["house-model"] == {
        "input": 0.5,
        "cached_input": None,
        "output": 1.25,
        "max_output_tokens": 2048,
        "source": "admin",
    }
    [shown] = _tsv(_ok(["pricing", "show", "house-model"], **via_env))
    assert shown == row

    _sluice(["pricing", "set", "house-model", "--remove"], **via_env)
    missing = _sluice(["pricing", "show", "house-model"], **via_env)
    assert missing.returncode == 1 and "no price for house-model" in missing.stderr
    half = _sluice(["pricing", "set", "house-model", "--input", "1"], **via_env)
    assert half.returncode == 2 and "pass --input and --output" in half.stderr


def test_client_commands_need_a_token(sqlite_gateway: RunningGateway) -> None:
    result = _sluice(["keys", "list"], SLUICE_URL=sqlite_gateway.base_url)
    assert result.returncode == 2
    assert result.stderr == "error: set SLUICE_ADMIN_TOKEN (or pass --token)\n"
    wrong = _sluice(["keys", "list", "--url", sqlite_gateway.base_url, "--token", "nope"])
    assert wrong.returncode == 2 and "HTTP 401" in wrong.stderr


# -- sluice test run -------------------------------------------------------------------------


def _suite(gateway: RunningGateway, cases: int, reply: str) -> None:
    suite_prompt(gateway, "qa")
    for n in range(cases):
        add_case(gateway, "qa", f"case {n}", reply)


def test_test_run_finds_the_gateway_by_flags_url_or_host_and_port(
    sqlite_gateway: RunningGateway,
) -> None:
    _suite(sqlite_gateway, 2, "#reply=ok")
    address = urlsplit(sqlite_gateway.base_url)
    ways: list[tuple[list[str], dict[str, str]]] = [
        (["--url", sqlite_gateway.base_url, "--token", ADMIN_TOKEN], {}),
        ([], {"SLUICE_URL": sqlite_gateway.base_url, "SLUICE_ADMIN_TOKEN": ADMIN_TOKEN}),
        (
            [],
            {
                "SLUICE_HOST": "0.0.0.0",  # what `serve` listens on: this machine for a client
                "SLUICE_PORT": str(address.port),
                "SLUICE_ADMIN_TOKEN": ADMIN_TOKEN,
            },
        ),
    ]
    for flags, env in ways:
        result = _sluice(["test", "run", "qa", *flags], **env)
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout + result.stderr
        assert "2/2 done  pass 2  fail 0" in result.stderr  # plain progress lines
        assert "gate PASS: 0 cases failed" in result.stdout
        header, *rows = result.stdout.split("\n\n")[0].splitlines()
        assert header.split("\t")[:2] == ["case", "status"]
        assert sorted(r.split("\t")[1] for r in rows) == ["passed", "passed"]
    assert len(sqlite_gateway.admin.get("/admin/test-runs").json()["data"]) == 3
    nowhere = _sluice(["test", "run", "qa", "--url", "http://127.0.0.1:1", "--token", "x"])
    assert nowhere.returncode == 2
    assert nowhere.stderr.startswith("error: cannot reach the gateway at http://127.0.0.1:1")


def test_ctrl_c_cancels_the_run_on_the_server(start_gateway: Any, sqlite_url: str) -> None:
    gateway: RunningGateway = start_gateway(
        sqlite_url, SLUICE_TEST_RUN_HEARTBEAT="0.05", SLUICE_TEST_RUN_BACKOFF="0.02"
    )
    _suite(gateway, 20, "#delay=300 #reply=ok")
    process = subprocess.Popen(
        [SLUICE, "test", "run", "qa", "--concurrency", "1"],
        env=_env(SLUICE_URL=gateway.base_url, SLUICE_ADMIN_TOKEN=ADMIN_TOKEN),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        started = process.stderr.readline()  # "test run ID: 20 cases"
        run_id = started.split()[2].rstrip(":")
        while get_run(gateway, run_id)["status"] != "running":
            pass  # bounded by the test timeout; the run starts within milliseconds
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, err
    run = wait_for_run(gateway, run_id)
    assert run["status"] == "cancelled" and run["completed"] < 20
    assert f"test run {run_id} cancelled on the server" in err
    assert "Traceback" not in err and out == ""


def _on_a_terminal(args: list[str], stream: str, **env: str) -> tuple[int, str]:
    """Run with `stream` ("stdout" or "stderr") on a pseudo-terminal; its text and the code."""
    controller, terminal = pty.openpty()
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    streams = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, stream: terminal}
    process = subprocess.Popen(
        [SLUICE, *args],
        env=_env(COLUMNS="200", **env),
        stdin=subprocess.DEVNULL,
        stdout=streams["stdout"],
        stderr=streams["stderr"],
    )
    os.close(terminal)
    code = process.wait(timeout=60)
    reader.join(timeout=10)
    os.close(controller)
    return code, b"".join(chunks).decode()


def test_on_a_terminal_tables_and_the_progress_bar_are_drawn(
    sqlite_gateway: RunningGateway, via_env: dict[str, str]
) -> None:
    _ok(["keys", "create", "terminal app"], **via_env)
    code, table = _on_a_terminal(["keys", "list"], "stdout", **via_env)
    assert code == 0
    assert "\x1b[" in table and "terminal app" in table  # styled, where piped output is not
    _suite(sqlite_gateway, 2, "#reply=ok")
    code, progress = _on_a_terminal(["test", "run", "qa"], "stderr", **via_env)
    assert code == 0
    assert "━" in progress and "pass 2" in progress  # rich's bar, not the plain lines
    assert "2/2 done" not in progress
