"""Shared steps for the budgets' end-to-end tests: keys with ids, budgets, exact expected costs,
and real processes: `sluice serve` replicas and a redis-server the test can kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import redis as redis_sync

from sluice_devtools.server_thread import free_port
from tests.conftest import RunningGateway

SLUICE = str(Path(sys.executable).parent / "sluice")

# gpt-4o-mini's shipped list price, USD per million input and output tokens.
MINI_INPUT = Decimal("0.15")
MINI_OUTPUT = Decimal("0.60")


def expected_cost(prompt_tokens: int, completion_tokens: int) -> Decimal:
    """What OpenAI bills gpt-4o-mini for this usage, computed here independently."""
    return (prompt_tokens * MINI_INPUT + completion_tokens * MINI_OUTPUT) / 1_000_000


def new_key(gateway: RunningGateway, name: str = "budgeted") -> tuple[str, str]:
    """(id, secret) of a fresh gateway key."""
    response = gateway.admin.post("/admin/keys", json={"name": name})
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], body["key"]


def create_budget(admin: httpx.Client, **spec: Any) -> dict[str, Any]:
    response = admin.post("/admin/budgets", json=spec)
    assert response.status_code == 201, response.text
    budget: dict[str, Any] = response.json()
    return budget


def settled_budget(admin: httpx.Client, budget_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The budget once nothing is reserved any more (streams settle behind the response)."""
    deadline = time.monotonic() + timeout
    while True:
        response = admin.get(f"/admin/budgets/{budget_id}")
        assert response.status_code == 200, response.text
        budget: dict[str, Any] = response.json()
        if budget["reserved_usd"] == 0:
            return budget
        if time.monotonic() > deadline:
            raise AssertionError(f"budget {budget_id} still holds {budget['reserved_usd']}")
        time.sleep(0.02)


def usd(value: Any) -> Decimal:
    """A money figure from a JSON answer or a header, as an exact Decimal."""
    return Decimal(str(value))


class GatewayProcess:
    """`sluice serve` as a separate process, as a second replica runs in production."""

    def __init__(self, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [SLUICE, "serve"],
            # One process per replica: with Redis, `sluice serve` defaults to one per CPU.
            env={
                **os.environ,
                "SLUICE_WORKERS": "1",
                **env,
                "SLUICE_PORT": str(self.port),
                "SLUICE_HOST": "127.0.0.1",
            },
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 90.0) -> GatewayProcess:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"gateway not ready: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class ThrowawayRedis:
    """A redis-server of the test's own, that it can kill and bring back on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ThrowawayRedis:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis_sync.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis_sync.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
