"""`sluice serve --workers N` as people run it: a real supervisor, real worker processes, the
machine's Postgres and Redis, the official openai SDK as the client."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import psycopg
import pytest

from gateway.cli.serve import worker_count
from gateway.settings import load_settings
from gateway.tokens.counting import count_chat_prompt, count_text
from sluice_devtools.fake_upstream import FakeUpstreamThread
from sluice_devtools.server_thread import free_port
from tests.conftest import ADMIN_TOKEN, UPSTREAM_KEY, GatewayFactory, _truncate_postgres
from tests.e2e.budgets_support import create_budget, expected_cost, new_key, settled_budget, usd

SLUICE = str(Path(sys.executable).parent / "sluice")
READY = re.compile(r"(\d+) workers ready \(pids ([\d, ]+)\)")
ANSWERED_COUNTS = re.compile(
    r'^sluice_requests_total\{[^}]*status="(?:200|402)"[^}]*\} (\S+)$', re.MULTILINE
)
ROOM = 12  # requests the budget has room for; 6 * ROOM are sent at once


class Workers:
    """`sluice serve --workers N` in a process of its own, its log in a file."""

    def __init__(self, log_path: Path, count: int, **env: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [SLUICE, "serve", "--workers", str(count)],
            env={**os.environ, **env, "SLUICE_PORT": str(self.port), "SLUICE_HOST": "127.0.0.1"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.pids: list[int] = []

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, pattern: str, timeout: float = 120.0) -> re.Match[str]:
        """The first match of `pattern` in the log, waiting for it (workers import for seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.log())
            if found:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(f"sluice serve exited: {self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in the log: {self.log()[-3000:]}")
            time.sleep(0.05)

    def wait_ready(self) -> Workers:
        found = self.wait_for(READY.pattern)
        self.pids = [int(pid) for pid in found.group(2).split(", ")]
        return self

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def running() -> Iterator[list[Workers]]:
    started: list[Workers] = []
    yield started
    for workers in started:
        workers.stop()


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    _truncate_postgres(postgres_database)
    return postgres_database


def _env(database_url: str, redis_url: str, upstream: FakeUpstreamThread, **extra: str) -> dict:
    return {
        "SLUICE_DATABASE_URL": database_url,
        "SLUICE_REDIS_URL": redis_url,
        "SLUICE_ADMIN_TOKEN": ADMIN_TOKEN,
        "SLUICE_UPSTREAM_BASE_URL": upstream.base_url,
        "SLUICE_UPSTREAM_API_KEY": UPSTREAM_KEY,
        "SLUICE_LOG_FLUSH_INTERVAL": "0.05",
        **extra,
    }


def _socket_owners(pids: list[int]) -> dict[int, int]:
    """Socket inode -> the worker pid holding it."""
    owners = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue  # closed while we looked
            if target.startswith("socket:["):
                owners[int(target[8:-1])] = pid
    return owners


def _server_side_inode(gateway_port: int, client_port: int) -> int:
    """The inode of the gateway's end of the connection from 127.0.0.1:client_port."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if state != "01":  # ESTABLISHED
            continue
        if int(local.split(":")[1], 16) == gateway_port and (
            int(remote.split(":")[1], 16) == client_port
        ):
            return int(inode)
    raise AssertionError(f"no connection from port {client_port} to {gateway_port}")


def _who_answered(workers: Workers, key: str, connections: int) -> tuple[Counter[int], set[str]]:
    """Make `connections` chat calls, one per new connection; how many each worker answered."""
    opened = []
    request_ids = set()
    try:
        for _ in range(connections):
            conn = http.client.HTTPConnection("127.0.0.1", workers.port, timeout=30)
            conn.request(
                "POST",
                "/v1/chat/completions",
                body=b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}',
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            assert response.status == 200, response.read()
            response.read()
            request_ids.add(response.headers["x-sluice-request-id"])
            opened.append(conn)  # kept open, so the worker's end of it can be found
        owners = _socket_owners(workers.pids)
        answered: Counter[int] = Counter()
        for conn in opened:
            assert conn.sock is not None
            inode = _server_side_inode(workers.port, conn.sock.getsockname()[1])
            answered[owners[inode]] += 1
        return answered, request_ids
    finally:
        for conn in opened:
            conn.close()


def _exact_request(marker: str) -> tuple[list[dict[str, str]], int, Decimal]:
    """Messages, max_tokens and cost of a request whose worst case is exactly its real cost."""
    messages = [{"role": "user", "content": f"{marker} #words=6"}]
    completion = count_text("gpt-4o-mini", " ".join(f"w{i}" for i in range(1, 7)))
    return (
        messages,
        completion,
        expected_cost(count_chat_prompt("gpt-4o-mini", messages), completion),
    )


def _connections_per_worker(port: int, pids: list[int]) -> Counter[int]:
    """Established connections on the gateway's port, by the worker holding its end."""
    owners = _socket_owners(pids)
    held: Counter[int] = Counter()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state, inode = int(fields[1].split(":")[1], 16), fields[3], int(fields[9])
        if state == "01" and local_port == port and inode in owners:  # 01: ESTABLISHED
            held[owners[inode]] += 1
    return held


async def _burst(
    workers: Workers, key: str, count: int, **request: object
) -> tuple[list[tuple[int, str]], Counter[int]]:
    """`count` concurrent calls with the SDK: each one's status and X-Sluice-Request-Id, and
    how many of the SDK's connections each worker held once they were answered."""
    base_url = workers.base_url
    async with openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0) as sdk:

        async def one() -> tuple[int, str]:
            try:
                raw = await sdk.chat.completions.with_raw_response.create(**request)  # type: ignore[call-overload]
            except openai.APIStatusError as exc:
                return exc.status_code, exc.response.headers.get("x-sluice-request-id", "")
            return 200, raw.headers["x-sluice-request-id"]

        answers = list(await asyncio.gather(*(one() for _ in range(count))))
        return answers, _connections_per_worker(workers.port, workers.pids)


def test_two_workers_answer_share_one_budget_and_one_metrics_page(
    postgres_url: str,
    redis_url: str,
    fake_upstream: FakeUpstreamThread,
    start_gateway: GatewayFactory,
    running: list[Workers],
    tmp_path: Path,
) -> None:
    # Key and budget through a gateway in this process, so both workers start with them loaded.
    setup = start_gateway(postgres_url, SLUICE_REDIS_URL=redis_url)
    key_id, secret = new_key(setup, "workers")
    marker = f"workers-{uuid.uuid4().hex[:10]}"
    messages, max_tokens, cost = _exact_request(marker)
    budget = create_budget(
        setup.admin, scope="key", scope_value=key_id, period="daily", limit_usd=str(cost * ROOM)
    )
    workers = Workers(tmp_path / "serve.log", 2, **_env(postgres_url, redis_url, fake_upstream))
    running.append(workers)
    workers.wait_ready()
    assert len(set(workers.pids)) == 2

    # SO_REUSEPORT spreads connections by a hash of their ports: 24 all on one worker would be
    # a 1 in 8 million chance, so both pids answering is the supervisor's doing.
    _, unbudgeted = new_key(setup, "spread")
    answered, _ = _who_answered(workers, unbudgeted, 24)
    assert sorted(answered) == sorted(workers.pids), answered

    statuses, held = asyncio.run(
        _burst(
            workers,
            secret,
            6 * ROOM,
            model="gpt-4o-mini",
            messages=messages,
            max_tokens=max_tokens,
        )
    )
    assert sorted(held) == sorted(workers.pids), held  # the budgeted calls hit both workers
    counted = Counter(status for status, _ in statuses)
    assert sorted(counted.items()) == [(200, ROOM), (402, 5 * ROOM)], workers.log()
    assert len([r for r in fake_upstream.requests if marker in str(r.body)]) == ROOM
    with httpx.Client(
        base_url=workers.base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as admin:
        settled = settled_budget(admin, budget["id"])
        assert usd(settled["spent_usd"]) == cost * ROOM
        assert settled["remaining_usd"] == 0
        # One scrape counts every worker's requests, whichever worker takes it.
        page = admin.get("/metrics").text
    served = sum(float(value) for value in ANSWERED_COUNTS.findall(page))
    assert served == 24 + 6 * ROOM, page
    gauges = set(re.findall(r'^sluice_log_buffer_rows\{pid="(\d+)"\}', page, re.M))
    assert gauges == {str(pid) for pid in workers.pids}


def _logged_request_ids(database_url: str) -> list[str]:
    if database_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(database_url.split(":///", 1)[1])) as conn:
            return [row[0] for row in conn.execute("SELECT request_id FROM request_logs")]
    plain = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        return [row[0] for row in conn.execute("SELECT request_id FROM request_logs")]


def test_sigterm_stops_every_worker_with_its_request_log_written(
    database_url: str,
    redis_url: str,
    fake_upstream: FakeUpstreamThread,
    start_gateway: GatewayFactory,
    running: list[Workers],
    tmp_path: Path,
) -> None:
    # On SQLite too: with Redis, several workers may share the file (their writes take turns).
    setup = start_gateway(database_url, SLUICE_REDIS_URL=redis_url)
    _, secret = new_key(setup, "sigterm")
    # Rows wait in each worker's buffer for a minute: only the shutdown flush can write them.
    env = _env(database_url, redis_url, fake_upstream, SLUICE_LOG_FLUSH_INTERVAL="60")
    workers = Workers(tmp_path / "serve.log", 2, **env)
    running.append(workers)
    workers.wait_ready()

    # A worker that dies is replaced, and the port keeps answering.
    dead = workers.pids[0]
    os.kill(dead, signal.SIGKILL)
    replaced = workers.wait_for(r"worker \d \(pid (\d+)\) ready")
    survivors = [int(replaced.group(1)), workers.pids[1]]
    assert dead not in survivors
    workers.pids = survivors

    answered, request_ids = _who_answered(workers, secret, 24)
    assert sorted(answered) == sorted(survivors), answered
    page = httpx.get(f"{workers.base_url}/metrics", timeout=30).text
    gauges = set(re.findall(r'^sluice_log_buffer_rows\{pid="(\d+)"\}', page, re.M))
    assert gauges == {str(pid) for pid in survivors}, page  # the dead worker's are gone
    statuses, _ = asyncio.run(
        _burst(
            workers,
            secret,
            40,
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "sigterm"}],
        )
    )
    assert [status for status, _ in statuses] == [200] * 40
    request_ids |= {request_id for _, request_id in statuses}
    assert len(request_ids) == 24 + 40

    assert workers.stop() == 0
    log = workers.log()
    assert "SIGTERM: stopping 2 workers" in log and "all workers stopped" in log
    assert "Traceback" not in log and "killing it" not in log
    # The workers log through the same one-line formatter as the supervisor.
    record = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) [\w.]+: ")
    assert all(record.match(line) for line in log.splitlines()), log
    for pid in [dead, *survivors]:
        assert re.search(rf"^{record.pattern}worker \d serving \(pid {pid}\)$", log, re.M), log
    for pid in survivors:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived the supervisor"
    assert sorted(_logged_request_ids(database_url)) == sorted(request_ids)


@pytest.mark.parametrize(
    ("args", "env", "shown"),
    [
        (["--workers", "2"], {}, "--workers 2"),
        ([], {"SLUICE_WORKERS": "3"}, "SLUICE_WORKERS=3"),
    ],
)
def test_several_workers_without_redis_are_refused_before_anything_starts(
    tmp_path: Path, args: list[str], env: dict[str, str], shown: str
) -> None:
    database = tmp_path / "never.db"
    result = subprocess.run(
        [SLUICE, "serve", *args],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")},
            **env,
            "SLUICE_DATABASE_URL": f"sqlite:///{database}",
            "SLUICE_PORT": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {shown} needs SLUICE_REDIS_URL")
    assert "listening" not in result.stderr
    assert not database.exists()


def test_worker_count_defaults_to_the_cpus_with_redis_and_one_without() -> None:
    redis = {"SLUICE_REDIS_URL": "redis://127.0.0.1:6379/9"}
    assert worker_count(load_settings({}), None) == 1
    assert worker_count(load_settings({"SLUICE_WORKERS": "1"}), None) == 1
    assert worker_count(load_settings(redis), None) == len(os.sched_getaffinity(0))
    assert worker_count(load_settings({**redis, "SLUICE_WORKERS": "3"}), None) == 3
    assert worker_count(load_settings({**redis, "SLUICE_WORKERS": "3"}), 5) == 5
