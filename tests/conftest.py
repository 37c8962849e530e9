"""Fixtures that give tests real things: a gateway served over HTTP, the fake upstream, the
machine's Postgres and Redis, and the official openai SDK as the client.

`database_url` runs a test twice, on SQLite and on Postgres. Postgres gets one database per
test session, migrated once and truncated before each test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import openai
import psycopg
import pytest
import redis as redis_sync

from gateway.app import create_app
from gateway.db.base import Base
from gateway.db.engine import create_engine
from gateway.db.migrate import upgrade
from gateway.settings import Settings, load_settings
from sluice_devtools.fake_upstream import FakeUpstreamThread
from sluice_devtools.server_thread import ServerThread

PluginT = TypeVar("PluginT")

PG_ADMIN_URL = os.environ.get("SLUICE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _redis_test_url() -> str:
    """SLUICE_TEST_REDIS (db 11 by default); each pytest-xdist worker takes the next db up, so
    workers never flush one another's keys. Redis has dbs 0-15 and the bench uses 15."""
    base = os.environ.get("SLUICE_TEST_REDIS", "redis://127.0.0.1:6379/11")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    prefix, _, db = base.rpartition("/")
    index = int(worker.removeprefix("gw") or 0)
    if int(db) + index > 14:
        raise RuntimeError(f"too many test workers for the Redis dbs above {base}")
    return f"{prefix}/{int(db) + index}"


REDIS_TEST_URL = _redis_test_url()
ADMIN_TOKEN = "test-admin-token"
# A canary: no log line, metric, error or response may ever contain it.
UPSTREAM_KEY = "sk-upstream-CANARY-7f3a9c"


def _migrate(url: str) -> None:
    async def run() -> None:
        engine = create_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    name = f"sluice_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    url = f"{url}/{name}"
    _migrate(url)
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate_postgres(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: the test runs once on SQLite and once on Postgres."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'sluice.db'}"
        _migrate(url)
        return url
    url: str = request.getfixturevalue("postgres_database")
    _truncate_postgres(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite database, for tests that need only the embedded default."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'sluice.db'}"
    _migrate(url)
    return url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The machine's Redis, on a test database emptied before and after."""
    client = redis_sync.Redis.from_url(REDIS_TEST_URL)
    client.flushdb()
    yield REDIS_TEST_URL
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstreamThread]:
    with FakeUpstreamThread() as fake:
        yield fake


def make_settings(database_url: str, upstream_url: str, **env: str) -> Settings:
    base = {
        "SLUICE_DATABASE_URL": database_url,
        "SLUICE_ADMIN_TOKEN": ADMIN_TOKEN,
        "SLUICE_UPSTREAM_BASE_URL": upstream_url,
        "SLUICE_UPSTREAM_API_KEY": UPSTREAM_KEY,
        "SLUICE_LOG_FLUSH_INTERVAL": "0.05",
    }
    base.update(env)
    return load_settings(base)


class RunningGateway:
    """A gateway served over real HTTP, with an admin client and SDK client factories."""

    def __init__(self, settings: Settings, server: ServerThread) -> None:
        self.settings = settings
        self.server = server
        self.base_url = server.base_url
        self.admin = httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )
        self.http = httpx.Client(base_url=server.base_url, timeout=30)
        self._clients: list[Any] = []

    def plugin(self, kind: type[PluginT]) -> PluginT:
        """One of the app's plugins: what it started is reached through its typed attributes."""
        return self.server.app.plugins.get(kind)

    def create_key(self, name: str = "test") -> str:
        response = self.admin.post("/admin/keys", json={"name": name})
        assert response.status_code == 201, response.text
        secret: str = response.json()["key"]
        return secret

    def openai(self, key: str | None = None, **kwargs: Any) -> openai.OpenAI:
        client = openai.OpenAI(
            base_url=f"{self.base_url}/v1",
            api_key=key or self.create_key(),
            max_retries=0,
            **kwargs,
        )
        self._clients.append(client)
        return client

    def async_openai(self, key: str | None = None, **kwargs: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=f"{self.base_url}/v1",
            api_key=key or self.create_key(),
            max_retries=0,
            **kwargs,
        )

    def wait_for_rows(
        self, count: int, timeout: float = 10.0, **filters: Any
    ) -> list[dict[str, Any]]:
        """Poll the admin API until the request log holds `count` rows matching `filters`."""
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            params = {"limit": 500, **filters}
            rows = self.admin.get("/admin/responses", params=params).json()["data"]
            if len(rows) >= count:
                return rows
            time.sleep(0.05)
        raise AssertionError(f"expected {count} log rows, found {len(rows)}")

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self.admin.close()
        self.http.close()
        self.server.stop()


GatewayFactory = Callable[..., RunningGateway]


@pytest.fixture
def start_gateway(
    fake_upstream: FakeUpstreamThread,
) -> Iterator[GatewayFactory]:
    """Start gateways: `start_gateway(database_url, SLUICE_X="...")`; all stopped at the end."""
    running: list[RunningGateway] = []

    def start(database_url: str, settings: Settings | None = None, **env: str) -> RunningGateway:
        settings = settings or make_settings(database_url, fake_upstream.base_url, **env)
        server = ServerThread(create_app(settings)).start()
        gateway = RunningGateway(settings, server)
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        gateway.close()


@pytest.fixture
def gateway(start_gateway: GatewayFactory, database_url: str) -> RunningGateway:
    """A gateway on SQLite and on Postgres (the test runs twice), in front of the fake."""
    return start_gateway(database_url)


@pytest.fixture
def sqlite_gateway(start_gateway: GatewayFactory, sqlite_url: str) -> RunningGateway:
    return start_gateway(sqlite_url)


def replace_settings(settings: Settings, section: str, **changes: Any) -> Settings:
    return dataclasses.replace(
        settings, **{section: dataclasses.replace(getattr(settings, section), **changes)}
    )
