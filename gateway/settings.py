"""Gateway settings: one frozen dataclass per concern, read once from the environment.

Each field names its environment variable and its parser in the field metadata; `load_settings`
walks the fields, so adding a setting is one line here and one row in the README. Every bad
value is reported at once, one clear line each, before anything starts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

__all__ = [
    "AdminSettings",
    "BudgetSettings",
    "DatabaseSettings",
    "EvaluationSettings",
    "LogSettings",
    "RedisSettings",
    "ServerSettings",
    "Settings",
    "SettingsError",
    "TestRunSettings",
    "UpstreamSettings",
    "load_settings",
]

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./sluice.db"


class SettingsError(Exception):
    """Raised with every invalid environment value, one message per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def _env(name: str, parse: Callable[[str], Any], *, fallback: str | None = None) -> Any:
    """Field metadata: the variable to read, its parser and an optional fallback variable."""
    return {"env": name, "parse": parse, "fallback": fallback}


def _str(value: str) -> str:
    return value


def _optional_str(value: str) -> str | None:
    return value or None


def _number(value: str, kind: type[int] | type[float], expected: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"must be {expected}") from None


def _port(value: str) -> int:
    port: int = _number(value, int, "a port number between 1 and 65535")
    if not 0 < port < 65536:
        raise ValueError("must be a port number between 1 and 65535")
    return port


def _positive_int(value: str) -> int:
    number: int = _number(value, int, "a positive whole number")
    if number <= 0:
        raise ValueError("must be a positive whole number")
    return number


def _whole_number(value: str) -> int:
    """An empty value is 0: an unset-looking setting means its default, not an error."""
    if not value.strip():
        return 0
    number: int = _number(value, int, "a whole number, 0 or more")
    if number < 0:
        raise ValueError("must be a whole number, 0 or more")
    return number


def _positive_float(value: str) -> float:
    number: float = _number(value, float, "a positive number")
    if not number > 0:
        raise ValueError("must be a positive number")
    return number


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _unpriced_policy(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in {"refuse", "fallback"}:
        raise ValueError("must be 'refuse' or 'fallback'")
    return lowered


def _upstream_client(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in {"lean", "aiohttp"}:
        raise ValueError("must be 'lean' or 'aiohttp'")
    return lowered


def _redis_client(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in {"resp", "redis-py"}:
        raise ValueError("must be 'resp' or 'redis-py'")
    return lowered


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


def _database_url(value: str) -> str:
    """Accept the plain driver names people paste and pin the async drivers we ship."""
    if value.startswith(("postgres://", "postgresql://")):
        value = "postgresql+psycopg://" + value.split("://", 1)[1]
    elif value.startswith("sqlite://"):
        value = "sqlite+aiosqlite://" + value.split("://", 1)[1]
    if not value.startswith(("postgresql+psycopg://", "sqlite+aiosqlite://")):
        raise ValueError("must be a sqlite:/// or postgresql:// URL")
    return value


def _redis_url(value: str) -> str | None:
    if not value:
        return None
    if urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return value


def _existing_file(value: str) -> Path | None:
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        raise ValueError(f"file {value!r} does not exist")
    return path


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = field(default="127.0.0.1", metadata=_env("SLUICE_HOST", _str))
    """Interface the gateway listens on."""
    port: int = field(default=8080, metadata=_env("SLUICE_PORT", _port))
    """TCP port the gateway listens on."""
    max_body_bytes: int = field(
        default=2 * 1024 * 1024, metadata=_env("SLUICE_MAX_BODY_BYTES", _positive_int)
    )
    """Largest request body accepted; larger bodies get 413 `request_too_large`."""
    config_file: Path | None = field(default=None, metadata=_env("SLUICE_CONFIG", _existing_file))
    """Optional TOML file with upstreams, model routing, pricing and limits."""
    workers: int | None = field(default=None, metadata=_env("SLUICE_WORKERS", _positive_int))
    """Gateway processes `sluice serve` runs on the port; unset: the CPU count with Redis, else 1
    (without Redis, budgets, caches and the evaluation queue live in one process)."""


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = field(
        default=DEFAULT_SQLITE_URL, metadata=_env("SLUICE_DATABASE_URL", _database_url)
    )
    """SQLAlchemy URL of the request log and registry database."""
    auto_migrate: bool | None = field(default=None, metadata=_env("SLUICE_AUTO_MIGRATE", _bool))
    """Apply migrations on `sluice serve`; unset means yes on SQLite and no on Postgres."""

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def migrate_on_start(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str | None = field(default=None, metadata=_env("SLUICE_REDIS_URL", _redis_url))
    """Redis for budgets, cache invalidation and the evaluation queue; unset runs in-process."""


@dataclass(frozen=True, slots=True)
class AdminSettings:
    token: str | None = field(default=None, metadata=_env("SLUICE_ADMIN_TOKEN", _optional_str))
    """Bearer token of the admin API; unset refuses every admin call."""


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    base_url: str = field(
        default="https://api.openai.com/v1", metadata=_env("SLUICE_UPSTREAM_BASE_URL", _http_url)
    )
    """Default OpenAI-compatible upstream, used for every model unless SLUICE_CONFIG routes it."""
    api_key: str | None = field(
        default=None,
        metadata=_env("SLUICE_UPSTREAM_API_KEY", _optional_str, fallback="OPENAI_API_KEY"),
    )
    """Provider key sent upstream; never accepted from or shown to a client."""
    connect_timeout: float = field(
        default=5.0, metadata=_env("SLUICE_UPSTREAM_CONNECT_TIMEOUT", _positive_float)
    )
    """Seconds to open a connection to the upstream (then 502 `upstream_error`)."""
    read_timeout: float = field(
        default=120.0, metadata=_env("SLUICE_UPSTREAM_READ_TIMEOUT", _positive_float)
    )
    """Seconds the upstream may stay silent, between stream chunks too (then 504)."""
    total_timeout: float = field(
        default=600.0, metadata=_env("SLUICE_UPSTREAM_TOTAL_TIMEOUT", _positive_float)
    )
    """Seconds a whole upstream call may take, streams included (then 504)."""
    max_connections: int = field(
        default=512, metadata=_env("SLUICE_UPSTREAM_MAX_CONNECTIONS", _positive_int)
    )
    """Pooled keep-alive connections to all upstreams together."""
    client: str = field(default="lean", metadata=_env("SLUICE_UPSTREAM_CLIENT", _upstream_client))
    """The request path's HTTP client: `lean` (ours, asyncio + httptools; a quarter of
    aiohttp's CPU per call) or `aiohttp`."""
    max_body_bytes: int = field(
        default=32 * 1024 * 1024, metadata=_env("SLUICE_UPSTREAM_MAX_BODY_BYTES", _positive_int)
    )
    """Largest non-streamed upstream answer (then 502 `upstream_error`, nothing logged of it)."""
    max_stream_bytes: int = field(
        default=128 * 1024 * 1024,
        metadata=_env("SLUICE_UPSTREAM_MAX_STREAM_BYTES", _positive_int),
    )
    """Most bytes one upstream stream may send in all (then the stream ends with an error
    event)."""
    max_event_bytes: int = field(
        default=1024 * 1024, metadata=_env("SLUICE_UPSTREAM_MAX_EVENT_BYTES", _positive_int)
    )
    """Largest single event of an upstream stream (then the stream ends with an error event)."""
    max_header_bytes: int = field(
        default=64 * 1024, metadata=_env("SLUICE_UPSTREAM_MAX_HEADER_BYTES", _positive_int)
    )
    """Largest upstream response head, status line and headers together (then 502)."""


@dataclass(frozen=True, slots=True)
class LogSettings:
    buffer_max_rows: int = field(
        default=50_000, metadata=_env("SLUICE_LOG_BUFFER_MAX_ROWS", _positive_int)
    )
    """Rows held in memory while the database is slow or down; beyond it rows are dropped."""
    batch_size: int = field(default=500, metadata=_env("SLUICE_LOG_BATCH_SIZE", _positive_int))
    """Rows written per database round trip."""
    flush_interval: float = field(
        default=0.2, metadata=_env("SLUICE_LOG_FLUSH_INTERVAL", _positive_float)
    )
    """Seconds between flushes when the buffer is not full."""
    stall_after: float = field(
        default=30.0, metadata=_env("SLUICE_LOG_STALL_AFTER", _positive_float)
    )
    """Seconds rows may wait with no successful write before /readyz answers 503."""
    dead_letter_file: str | None = field(
        default=None, metadata=_env("SLUICE_LOG_DEAD_LETTER_FILE", _optional_str)
    )
    """JSONL file for rows neither the log nor its dead-letter table took (default: beside the
    SQLite database, or sluice-request-log-dead-letters.jsonl in the working directory)."""
    retention_days: int = field(
        default=0, metadata=_env("SLUICE_LOG_RETENTION_DAYS", _whole_number)
    )
    """Whole UTC days of request log kept (rows, evaluations, rollup); 0 keeps everything."""


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    fail_open: bool = field(default=False, metadata=_env("SLUICE_BUDGET_FAIL_OPEN", _bool))
    """With the budget store down, serve requests unbudgeted (counted and logged) instead of 503."""
    default_max_tokens: int = field(
        default=4096, metadata=_env("SLUICE_DEFAULT_MAX_TOKENS", _positive_int)
    )
    """Output cap set on budgeted requests that name none, so the reserved worst case holds."""
    unpriced_models: str = field(
        default="refuse", metadata=_env("SLUICE_UNPRICED_MODELS", _unpriced_policy)
    )
    """A budgeted request to a model with no price: `refuse` (400) or `fallback` (the "*" price)."""
    reservation_ttl: float = field(
        default=900.0, metadata=_env("SLUICE_BUDGET_RESERVATION_TTL", _positive_float)
    )
    """Seconds before a reservation left by a crashed gateway is released; keep it above
    SLUICE_UPSTREAM_TOTAL_TIMEOUT."""
    store_timeout: float = field(
        default=2.0, metadata=_env("SLUICE_BUDGET_STORE_TIMEOUT", _positive_float)
    )
    """Seconds a budget-store (Redis) call may take before the store counts as down."""
    redis_client: str = field(
        default="resp", metadata=_env("SLUICE_BUDGET_REDIS_CLIENT", _redis_client)
    )
    """The budget ledger's Redis client: `resp` (ours, one pipelined socket) or `redis-py`."""


@dataclass(frozen=True, slots=True)
class EvaluationSettings:
    concurrency: int = field(default=64, metadata=_env("SLUICE_EVAL_CONCURRENCY", _positive_int))
    """Evaluation jobs one worker (or the embedded gateway) runs at the same time."""
    max_failures: int = field(default=5, metadata=_env("SLUICE_EVAL_MAX_FAILURES", _positive_int))
    """Times a job may fail (or its worker die) before it goes to the dead-letter stream."""
    claim_after: float = field(
        default=30.0, metadata=_env("SLUICE_EVAL_CLAIM_AFTER", _positive_float)
    )
    """Seconds a job may sit with a silent worker before another worker claims it."""
    timeout: float = field(default=60.0, metadata=_env("SLUICE_EVAL_TIMEOUT", _positive_float))
    """Seconds one evaluator may take on one response (then an error result)."""
    attempts: int = field(default=3, metadata=_env("SLUICE_EVAL_ATTEMPTS", _positive_int))
    """Tries per evaluator for a retryable failure, e.g. a judge reply that is not a score."""
    sweep_interval: float = field(
        default=60.0, metadata=_env("SLUICE_EVAL_SWEEP_INTERVAL", _positive_float)
    )
    """Seconds between sweeps for production responses that were never evaluated."""
    sweep_grace: float = field(
        default=300.0, metadata=_env("SLUICE_EVAL_SWEEP_GRACE", _positive_float)
    )
    """Age in seconds before a response's missing evaluation counts as lost, not pending."""
    sweep_lookback: float = field(
        default=86400.0, metadata=_env("SLUICE_EVAL_SWEEP_LOOKBACK", _positive_float)
    )
    """How far back, in seconds, the sweep looks for unevaluated responses."""


@dataclass(frozen=True, slots=True)
class TestRunSettings:
    attempts: int = field(default=3, metadata=_env("SLUICE_TEST_RUN_ATTEMPTS", _positive_int))
    """Tries per test case when the upstream fails (5xx, 429, timeout), with backoff between."""
    backoff: float = field(default=0.5, metadata=_env("SLUICE_TEST_RUN_BACKOFF", _positive_float))
    """Seconds before the first retry of a case; doubled for each further one."""
    heartbeat: float = field(
        default=1.0, metadata=_env("SLUICE_TEST_RUN_HEARTBEAT", _positive_float)
    )
    """Seconds between a running run's heartbeats (and between looks for orphaned runs)."""
    stale_after: float = field(
        default=15.0, metadata=_env("SLUICE_TEST_RUN_STALE_AFTER", _positive_float)
    )
    """Heartbeat age in seconds after which a running run's process counts as gone."""
    max_starts: int = field(default=3, metadata=_env("SLUICE_TEST_RUN_MAX_STARTS", _positive_int))
    """Times a run may be taken up (first start plus resumes) before it is failed instead."""
    scheduler: bool | None = field(default=None, metadata=_env("SLUICE_SCHEDULER", _bool))
    """Run test schedules in this process; unset: only `sluice worker` and the embedded mode."""
    scheduler_interval: float = field(
        default=10.0, metadata=_env("SLUICE_SCHEDULER_INTERVAL", _positive_float)
    )
    """Seconds between the scheduler's looks for due schedules."""
    max_score_drop: float = field(
        default=0.1, metadata=_env("SLUICE_ALERT_MAX_SCORE_DROP", _positive_float)
    )
    """Default share by which a scheduled run's mean score may fall before an alert."""


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    log: LogSettings = field(default_factory=LogSettings)
    budgets: BudgetSettings = field(default_factory=BudgetSettings)
    evaluations: EvaluationSettings = field(default_factory=EvaluationSettings)
    test_runs: TestRunSettings = field(default_factory=TestRunSettings)


_T = TypeVar("_T")


def _load_section(cls: type[_T], env: Mapping[str, str], problems: list[str]) -> _T:
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
        meta = spec.metadata
        name = meta["env"]
        raw = env.get(name)
        if raw is None and meta["fallback"]:
            name, raw = meta["fallback"], env.get(meta["fallback"])
        if raw is None:
            continue
        try:
            values[spec.name] = meta["parse"](raw.strip())
        except ValueError as exc:
            problems.append(f"{name}={raw!r}: {exc}")
    return cls(**values)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read every setting from `env` (default: the process environment) or raise SettingsError."""
    source = os.environ if env is None else env
    problems: list[str] = []
    sections: dict[str, Any] = {
        section.name: _load_section(section.default_factory, source, problems)  # type: ignore[arg-type]
        for section in dataclasses.fields(Settings)
    }
    if problems:
        raise SettingsError(problems)
    return Settings(**sections)
