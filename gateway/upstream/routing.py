"""Model routing: which upstream serves a model, read from SLUICE_CONFIG or the env default.

    [upstreams.openai]                 # any number of OpenAI-compatible upstreams
    base_url = "https://api.openai.com/v1"
    api_key_env = "OPENAI_API_KEY"     # the variable holding its key (never the key itself)

    [[routes]]                         # first match wins; globs as in fnmatch
    models = ["gpt-*", "text-embedding-*"]
    upstream = "openai"
    target_model = "..."               # optional: the name the upstream knows the model by

With no `[[routes]]`, every model goes to the default upstream (SLUICE_UPSTREAM_BASE_URL).
With routes, a model that no route matches is a 404 `model_not_found`.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.errors import ModelNotFound
from gateway.settings import UpstreamSettings

__all__ = ["ConfigFileError", "ModelRouter", "Route", "Upstream", "load_config_file"]

DEFAULT_UPSTREAM = "default"


class ConfigFileError(Exception):
    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"invalid SLUICE_CONFIG {path}:\n" + "\n".join(f"  - {p}" for p in problems)
        )


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    base_url: str
    api_key: str | None

    def __repr__(self) -> str:  # the key must never reach a log line
        return f"Upstream(name={self.name!r}, base_url={self.base_url!r})"


@dataclass(frozen=True, slots=True)
class Route:
    upstream: Upstream
    model: str
    """The model name sent upstream."""


@dataclass(frozen=True, slots=True)
class _Rule:
    patterns: tuple[str, ...]
    regex: re.Pattern[str]
    upstream: Upstream
    target_model: str | None


def load_config_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(path, [f"not valid TOML: {exc}"]) from None


class ModelRouter:
    def __init__(self, upstreams: Mapping[str, Upstream], rules: list[_Rule]) -> None:
        self.upstreams = dict(upstreams)
        self._rules = rules
        self._cache: dict[str, Route | None] = {}

    @classmethod
    def from_config(
        cls,
        settings: UpstreamSettings,
        config: Mapping[str, Any],
        *,
        path: Path | str = "SLUICE_CONFIG",
        env: Mapping[str, str] | None = None,
    ) -> ModelRouter:
        env = os.environ if env is None else env
        problems: list[str] = []
        upstreams = {
            DEFAULT_UPSTREAM: Upstream(DEFAULT_UPSTREAM, settings.base_url, settings.api_key)
        }
        raw_upstreams = config.get("upstreams", {})
        if not isinstance(raw_upstreams, dict):
            problems.append("[upstreams] must be a table of named upstreams")
            raw_upstreams = {}
        for name, spec in raw_upstreams.items():
            where = f"upstreams.{name}"
            if not isinstance(spec, dict):
                problems.append(f"[{where}] must be a table")
                continue
            unknown = set(spec) - {"base_url", "api_key_env"}
            if unknown:
                problems.append(f"[{where}] has unknown fields: {', '.join(sorted(unknown))}")
            base_url = spec.get("base_url")
            parts = urlsplit(base_url) if isinstance(base_url, str) else None
            if (
                not isinstance(base_url, str)
                or parts is None
                or parts.scheme not in {"http", "https"}
                or not parts.netloc
            ):
                problems.append(f"[{where}] base_url must be an http(s) URL")
                continue
            key_env = spec.get("api_key_env")
            key = None
            if key_env is not None:
                if not isinstance(key_env, str) or not key_env:
                    problems.append(f"[{where}] api_key_env must be the name of a variable")
                elif key_env not in env:
                    problems.append(f"[{where}] api_key_env: variable {key_env} is not set")
                else:
                    key = env[key_env]
            upstreams[name] = Upstream(name, base_url.rstrip("/"), key)

        rules: list[_Rule] = []
        raw_routes = config.get("routes", [])
        if not isinstance(raw_routes, list):
            problems.append("routes must be an array of tables: [[routes]]")
            raw_routes = []
        for index, spec in enumerate(raw_routes):
            where = f"routes[{index}]"
            if not isinstance(spec, dict):
                problems.append(f"{where} must be a table")
                continue
            unknown = set(spec) - {"models", "upstream", "target_model"}
            if unknown:
                problems.append(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
            models = spec.get("models")
            if isinstance(models, str):
                models = [models]
            if not models or not all(isinstance(m, str) and m for m in models):
                problems.append(f"{where}.models must be a list of model names or globs")
                continue
            upstream_name = spec.get("upstream", DEFAULT_UPSTREAM)
            if upstream_name not in upstreams:
                problems.append(f"{where}.upstream {upstream_name!r} is not defined in [upstreams]")
                continue
            target = spec.get("target_model")
            if target is not None and not isinstance(target, str):
                problems.append(f"{where}.target_model must be a string")
                continue
            regex = re.compile("|".join(fnmatch.translate(m) for m in models))
            rules.append(_Rule(tuple(models), regex, upstreams[upstream_name], target))
        if problems:
            raise ConfigFileError(path, problems)
        if not rules:
            rules.append(_Rule(("*",), re.compile(".*", re.S), upstreams[DEFAULT_UPSTREAM], None))
        return cls(upstreams, rules)

    def resolve(self, model: str) -> Route:
        route = self._cache.get(model)
        if route is None:
            route = self._match(model)
            if route is None:
                raise ModelNotFound(
                    f"The model '{model[:100]}' does not exist or is not routed by this gateway. "
                    "GET /v1/models lists the models you can call.",
                    param="model",
                )
            if len(self._cache) < 10_000:
                self._cache[model] = route
        return route

    def _match(self, model: str) -> Route | None:
        for rule in self._rules:
            if rule.regex.fullmatch(model):
                return Route(rule.upstream, rule.target_model or model)
        return None

    def routes_model(self, model: str) -> bool:
        return self._match(model) is not None

    def exact_models(self) -> list[str]:
        """Model names routed by name rather than by glob."""
        names = []
        for rule in self._rules:
            names += [p for p in rule.patterns if not any(c in p for c in "*?[")]
        return names

    def upstreams_with_globs(self) -> list[Upstream]:
        seen: dict[str, Upstream] = {}
        for rule in self._rules:
            if any(any(c in p for c in "*?[") for p in rule.patterns):
                seen.setdefault(rule.upstream.name, rule.upstream)
        return list(seen.values())
