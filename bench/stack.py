"""The system under test: the canned nginx upstream, the gateway's stores, and `sluice serve`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cases import Admin
from procs import Processes, exited

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_BIN = REPO / ".venv" / "bin"

# BENCH_PORT moves both (gateway on it, nginx one above) so two runs can share a machine.
_BASE_PORT = int(os.environ.get("BENCH_PORT", "18080"))
UPSTREAM_HOST, UPSTREAM_PORT = "127.0.0.1", _BASE_PORT + 1
UPSTREAM_JSON = f"http://{UPSTREAM_HOST}:{UPSTREAM_PORT}/v1"
UPSTREAM_SSE = f"http://{UPSTREAM_HOST}:{UPSTREAM_PORT}/sse/v1"
GATEWAY_HOST, GATEWAY_PORT = "127.0.0.1", _BASE_PORT
ADMIN_TOKEN = "bench-admin"

CHAT_BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello in five words."}],
    "max_tokens": 16,
}


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and why."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def http(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, str], bytes]:
    """One request with urllib; HTTP errors are answers too."""
    data = json.dumps(body).encode() if body is not None else None
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def chat_body(stream: bool) -> dict[str, Any]:
    return {**CHAT_BODY, "stream": True} if stream else dict(CHAT_BODY)


def check_chat_answer(
    status: int, headers: dict[str, str], body: bytes, stream: bool
) -> str | None:
    """None if this looks like a good chat answer, else what is wrong with it."""
    if status != 200:
        return f"status {status}: {body[:300]!r}"
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if stream:
        if "text/event-stream" not in ctype:
            return f"content-type {ctype!r}, expected text/event-stream"
        if b"data: [DONE]" not in body:
            return f"stream without data: [DONE]: {body[:300]!r}"
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return f"not JSON: {body[:300]!r}"
    return None if doc.get("choices") else f"no choices: {body[:300]!r}"


@dataclass
class Gateway:
    proc: subprocess.Popen[Any]
    base_url: str
    log: Path

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/v1/chat/completions"


@dataclass
class Stack:
    """Starts and resets the pieces; every process goes through `procs`, so it is stopped."""

    procs: Processes
    tmp: Path
    nginx: str
    sluice: str
    database_url: str
    redis_url: str
    keep_db: bool = False
    gateway_wait: float = 60.0
    extra_env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    # --- the upstream ---

    def start_upstream(self) -> subprocess.Popen[Any]:
        if port_open(UPSTREAM_HOST, UPSTREAM_PORT):
            raise BenchError(f"{UPSTREAM_HOST}:{UPSTREAM_PORT} is already in use")
        prefix = self.tmp / "nginx"
        shutil.copytree(BENCH / "nginx", prefix)
        conf = prefix / "nginx.conf"
        conf.write_text(
            conf.read_text().replace("127.0.0.1:18081", f"{UPSTREAM_HOST}:{UPSTREAM_PORT}")
        )
        (prefix / "logs").mkdir(exist_ok=True)
        (prefix / "tmp").mkdir(exist_ok=True)
        # nginx's worker runs as `nobody` when started as root: it must read the bodies.
        for path in [self.tmp, prefix, *prefix.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        error_log = prefix / "logs" / "error.log"
        argv = [
            self.nginx,
            "-p",
            f"{prefix}/",
            "-c",
            str(prefix / "nginx.conf"),
            "-e",
            str(error_log),
        ]
        check = subprocess.run([*argv, "-t", "-q"], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise BenchError(f"nginx -t failed:\n{check.stderr}")
        proc = self.procs.start("nginx", argv, log=self.tmp / "nginx.out")
        deadline = time.monotonic() + 10
        while not port_open(UPSTREAM_HOST, UPSTREAM_PORT):
            if exited(proc) or time.monotonic() > deadline:
                raise BenchError(f"nginx did not start:\n{tail(error_log)}")
            time.sleep(0.05)
        for base, stream in ((UPSTREAM_JSON, False), (UPSTREAM_SSE, True)):
            answer = http("POST", f"{base}/chat/completions", chat_body(stream))
            problem = check_chat_answer(*answer, stream)
            if problem:
                raise BenchError(f"canned upstream at {base} is wrong: {problem}")
        return proc

    # --- the gateway's environment and stores ---

    def gateway_env(self, overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
        # The caller's own SLUICE_* settings would make runs incomparable: drop them.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update(
            SLUICE_PORT=str(GATEWAY_PORT),
            SLUICE_HOST=GATEWAY_HOST,
            SLUICE_ADMIN_TOKEN=ADMIN_TOKEN,
            SLUICE_UPSTREAM_BASE_URL=UPSTREAM_JSON,
            SLUICE_UPSTREAM_API_KEY="sk-upstream-bench",
            SLUICE_DATABASE_URL=self.database_url,
        )
        if self.redis_url:
            env["SLUICE_REDIS_URL"] = self.redis_url
        env.update(self.extra_env)
        for key, value in (overrides or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def sluice_unavailable(self) -> str | None:
        """None if `sluice` can run, else why not."""
        if not Path(self.sluice).exists():
            return f"{self.sluice} does not exist"
        try:
            res = subprocess.run(
                [self.sluice, "--help"],
                capture_output=True,
                text=True,
                timeout=60,
                env=self.gateway_env(),
            )
        except subprocess.TimeoutExpired:
            return "`sluice --help` did not finish within 60 s"
        if res.returncode != 0:
            why = (res.stderr or res.stdout).strip()[-600:]
            return f"`sluice --help` exited {res.returncode}: {why}"
        return None

    def reset_stores(self) -> None:
        """Drop and re-create the bench database, flush the bench Redis db."""
        url = urlsplit(re.sub(r"\+\w+:", ":", self.database_url, count=1))
        if url.scheme.startswith("postgres"):
            self._reset_postgres(url.path.lstrip("/"), url)
        elif url.scheme.startswith("sqlite") and not self.keep_db:
            # sqlite:///rel.db is relative to the repo root (the gateway's cwd); sqlite:////abs.db
            path = Path(url.path[1:])
            path = path if path.is_absolute() else REPO / path
            if "bench" in path.name:
                with contextlib.suppress(OSError):
                    path.unlink()
        if self.redis_url:
            self._flush_redis()

    def _reset_postgres(self, dbname: str, url: Any) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_]+", dbname):
            raise BenchError(f"odd database name {dbname!r}")
        psql = [
            *("psql", "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432)),
            *("-U", url.username or "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt"),
        ]
        env = dict(os.environ, PGPASSWORD=url.password or os.environ.get("PGPASSWORD", ""))
        create = ["-c", f'CREATE DATABASE "{dbname}"']
        if self.keep_db or "bench" not in dbname:
            if not self.keep_db:
                self.notes.append(f"database {dbname!r} has no 'bench' in its name: not dropped")
            query = f"SELECT 1 FROM pg_database WHERE datname = '{dbname}'"
            found = subprocess.run(
                [*psql, "-c", query], capture_output=True, text=True, env=env, timeout=30
            )
            cmds = [] if found.stdout.strip() == "1" else create
        else:
            cmds = ["-c", f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)', *create]
        if cmds:
            res = subprocess.run(
                [*psql, *cmds], capture_output=True, text=True, env=env, timeout=60
            )
            if res.returncode != 0:
                raise BenchError(f"could not (re)create database {dbname}: {res.stderr.strip()}")

    def _flush_redis(self) -> None:
        db = (urlsplit(self.redis_url).path or "/0").lstrip("/") or "0"
        if db == "0":
            self.notes.append("Redis db 0 was not flushed (give the bench its own db, e.g. /15)")
            return
        import redis  # the gateway's own dependency, in the venv

        client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
        try:
            client.flushdb()
        finally:
            client.close()

    def migrate(self, env: dict[str, str] | None = None) -> None:
        logf = self.tmp / "migrate.log"
        with open(logf, "ab") as out:
            try:
                res = subprocess.run(
                    [self.sluice, "migrate"],
                    env=env or self.gateway_env(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=180,
                    cwd=REPO,
                )
            except subprocess.TimeoutExpired as exc:
                raise BenchError("`sluice migrate` did not finish within 180 s") from exc
        if res.returncode != 0:
            raise BenchError(f"`sluice migrate` exited {res.returncode}:\n{tail(logf)}")

    # --- the gateway ---

    def start_gateway(
        self, name: str, env: dict[str, str], argv: list[str] | None = None
    ) -> Gateway:
        port = int(env["SLUICE_PORT"])
        if port_open(GATEWAY_HOST, port):
            raise BenchError(f"{GATEWAY_HOST}:{port} is already in use (a gateway left running?)")
        logf = self.tmp / f"gateway-{name}.log"
        proc = self.procs.start(
            "gateway", argv or [self.sluice, "serve"], env=env, log=logf, cwd=REPO
        )
        base = f"http://{GATEWAY_HOST}:{port}"
        deadline = time.monotonic() + self.gateway_wait
        while True:
            if exited(proc):
                self.procs.stop(proc)
                raise BenchError(f"`sluice serve` exited during startup:\n{tail(logf)}")
            with contextlib.suppress(OSError):
                if http("GET", f"{base}/healthz", timeout=2)[0] == 200:
                    return Gateway(proc=proc, base_url=base, log=logf)
            if time.monotonic() > deadline:
                self.procs.stop(proc)
                waited = f"{self.gateway_wait:.0f} s"
                raise BenchError(f"no 200 from /healthz within {waited}:\n{tail(logf)}")
            time.sleep(0.1)

    @staticmethod
    def admin_with_key(gw: Gateway) -> Admin:
        """An admin client holding a fresh gateway key."""
        admin = Admin(gw.base_url, ADMIN_TOKEN)
        created = admin.post("/admin/keys", {"name": "bench"})
        if not isinstance(created, dict) or not str(created.get("key", "")).startswith(
            "sk-sluice-"
        ):
            raise BenchError(f"POST /admin/keys answered {created!r}")
        admin.key, admin.key_id = created["key"], str(created.get("id", ""))
        return admin
