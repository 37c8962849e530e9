"""Settings from the environment and model routing from SLUICE_CONFIG."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ModelNotFound
from gateway.settings import DEFAULT_SQLITE_URL, SettingsError, load_settings
from gateway.upstream.routing import ConfigFileError, ModelRouter, load_config_file


def test_defaults_follow_the_contract() -> None:
    settings = load_settings({})
    assert settings.database.url == DEFAULT_SQLITE_URL
    assert settings.database.migrate_on_start is True
    assert settings.redis.url is None
    assert settings.admin.token is None
    assert settings.upstream.base_url == "https://api.openai.com/v1"
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)
    assert settings.server.max_body_bytes == 2 * 1024 * 1024


def test_openai_api_key_is_the_fallback_for_the_upstream_key() -> None:
    assert load_settings({"OPENAI_API_KEY": "sk-a"}).upstream.api_key == "sk-a"
    both = {"OPENAI_API_KEY": "sk-a", "SLUICE_UPSTREAM_API_KEY": "sk-b"}
    assert load_settings(both).upstream.api_key == "sk-b"


def test_plain_database_urls_get_async_drivers() -> None:
    pg = load_settings({"SLUICE_DATABASE_URL": "postgresql://u@h/db"}).database
    assert pg.url == "postgresql+psycopg://u@h/db"
    assert pg.migrate_on_start is False
    assert load_settings({"SLUICE_DATABASE_URL": "sqlite:///x.db"}).database.url == (
        "sqlite+aiosqlite:///x.db"
    )


def test_log_retention_is_off_unless_a_number_of_days_is_given() -> None:
    assert load_settings({}).log.retention_days == 0
    assert load_settings({"SLUICE_LOG_RETENTION_DAYS": ""}).log.retention_days == 0
    assert load_settings({"SLUICE_LOG_RETENTION_DAYS": "30"}).log.retention_days == 30
    with pytest.raises(SettingsError) as info:
        load_settings({"SLUICE_LOG_RETENTION_DAYS": "-1"})
    assert "SLUICE_LOG_RETENTION_DAYS" in str(info.value)


def test_every_bad_value_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(
            {
                "SLUICE_PORT": "eighty",
                "SLUICE_DATABASE_URL": "mysql://x",
                "SLUICE_REDIS_URL": "http://x",
                "SLUICE_UPSTREAM_BASE_URL": "ftp://x",
                "SLUICE_MAX_BODY_BYTES": "-1",
                "SLUICE_CONFIG": "/does/not/exist.toml",
                "SLUICE_AUTO_MIGRATE": "maybe",
            }
        )
    problems = info.value.problems
    assert len(problems) == 7
    assert any(p.startswith("SLUICE_PORT='eighty': must be a port number") for p in problems)
    assert any("SLUICE_AUTO_MIGRATE" in p and "true or false" in p for p in problems)


def _router(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> ModelRouter:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return ModelRouter.from_config(
        load_settings({}).upstream, load_config_file(path), path=path, env=env or {}
    )


def test_routes_match_globs_in_order(tmp_path: Path) -> None:
    router = _router(
        tmp_path,
        """
[upstreams.local]
base_url = "http://127.0.0.1:1234/v1"
[[routes]]
models = ["llama-*"]
upstream = "local"
[[routes]]
models = ["gpt-*", "o1"]
""",
    )
    assert router.resolve("llama-3").upstream.name == "local"
    assert router.resolve("gpt-4o").upstream.name == "default"
    assert router.resolve("o1").model == "o1"
    with pytest.raises(ModelNotFound):
        router.resolve("o1-mini")
    assert router.exact_models() == ["o1"]


def test_without_routes_everything_goes_to_the_default(tmp_path: Path) -> None:
    router = _router(tmp_path, "")
    assert router.resolve("anything").upstream.name == "default"


def test_config_errors_are_listed_with_their_place(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as info:
        _router(
            tmp_path,
            """
[upstreams.a]
base_url = "not a url"
[upstreams.b]
base_url = "http://x/v1"
api_key_env = "MISSING_VAR"
colour = "red"
[[routes]]
models = ["x"]
upstream = "nowhere"
[[routes]]
upstream = "b"
""",
        )
    text = str(info.value)
    assert "[upstreams.a] base_url must be an http(s) URL" in text
    assert "variable MISSING_VAR is not set" in text
    assert "unknown fields: colour" in text
    assert "routes[0].upstream 'nowhere' is not defined" in text
    assert "routes[1].models must be a list" in text
    with pytest.raises(ConfigFileError, match="not valid TOML"):
        _router(tmp_path, "[[routes]\n")


def test_upstream_repr_never_shows_its_key(tmp_path: Path) -> None:
    router = _router(
        tmp_path,
        '[upstreams.a]\nbase_url = "http://x/v1"\napi_key_env = "K"\n',
        env={"K": "sk-secret-value"},
    )
    assert "sk-secret-value" not in repr(router.upstreams["a"])
