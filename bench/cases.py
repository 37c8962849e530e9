"""The benchmark's cases: what each run sends, and how the gateway is set up for it.

A case is a named variant of the same chat request. It may add request headers, override the
gateway's environment (a case with different overrides gets its own gateway process), and
prepare the gateway through the admin API once it is up (create a prompt, budgets,
evaluators). Every case is measured at each concurrency against the upstream directly and
through the gateway, so the difference is what that feature costs.

To add a case, append a `Case` to `CASES`; run it with `bench/run.py --cases NAME`.
Cases with `default=False` run only when named (or with `--cases all`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class AdminError(RuntimeError):
    """The admin API answered with an error status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {body[:500]}")
        self.status = status


@dataclass
class Admin:
    """A minimal client for the gateway's admin API, handed to case setup hooks."""

    base_url: str
    token: str
    key: str = ""
    """The gateway key (sk-sluice-...) the benchmark sends."""
    key_id: str = ""
    """Its id, for budgets scoped to the key."""

    def call(self, method: str, path: str, body: Any = None, *, ok_conflict: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            if ok_conflict and exc.code == 409:
                return None
            raise AdminError(method, path, exc.code, text) from exc
        return json.loads(raw) if raw else None

    def post(self, path: str, body: Any, **kw: Any) -> Any:
        return self.call("POST", path, body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> Any:
        return self.call("PUT", path, body, **kw)

    def get(self, path: str) -> Any:
        return self.call("GET", path)


SetupHook = Callable[[Admin], "Mapping[str, str] | None"]
"""Runs once the case's gateway is up; may return extra request headers for the case."""


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    stream: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra request headers, sent both directly (the upstream ignores them) and via the gateway."""
    gateway_env: Mapping[str, str | None] = field(default_factory=dict)
    """Overrides of the gateway's environment for this case; None removes a variable."""
    setup: SetupHook | None = None
    expect_headers: tuple[str, ...] = ()
    """Response headers the first answer through the gateway must carry: proof the feature ran."""
    verify: Callable[[Admin], str] | None = None
    """Runs after the measured runs; its one-line finding goes into the results."""
    default: bool = True
    """Run without being named in --cases."""


# --- setup hooks -------------------------------------------------------------------------
# Written against shared/CONTRACT.md section 4. The opt-in cases below have not been run
# against a finished gateway yet: adjust payloads here if the admin API differs.


def _prompt_with_version(admin: Admin, slug: str) -> int:
    admin.post("/admin/prompts", {"slug": slug, "description": "bench/run.py"}, ok_conflict=True)
    version = admin.post(
        f"/admin/prompts/{slug}/versions",
        {
            "messages": [
                {"role": "system", "content": "You are a terse assistant. Answer in one line."}
            ],
            "params": {"temperature": 0},
            "note": "created by bench/run.py",
        },
    )
    number = int(version["version"])
    admin.put(f"/admin/prompts/{slug}/labels/production", {"version": number})
    return number


def setup_prompt(admin: Admin) -> None:
    _prompt_with_version(admin, "bench-greeting")


def setup_two_budgets(admin: Admin) -> None:
    admin.put(
        "/admin/pricing",
        {"models": {"gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.6}}},
    )
    # Limits far above what a run can spend: the case measures reserve/settle, not refusals.
    admin.post("/admin/budgets", {"scope": "global", "period": "monthly", "limit_usd": 1_000_000})
    admin.post(
        "/admin/budgets",
        {"scope": "key", "scope_value": admin.key_id, "period": "daily", "limit_usd": 1_000_000},
    )


def setup_full_path(admin: Admin) -> None:
    """A prompt with a variable, rendered on every request, and the two budgets."""
    admin.post("/admin/prompts", {"slug": "bench-full", "description": "bench/run.py"})
    version = admin.post(
        "/admin/prompts/bench-full/versions",
        {
            "messages": [{"role": "system", "content": "You are a terse assistant for {{team}}."}],
            "variables": ["team"],
            "params": {"temperature": 0},
            "note": "created by bench/run.py",
        },
    )
    admin.put("/admin/prompts/bench-full/labels/production", {"version": int(version["version"])})
    setup_two_budgets(admin)


def setup_three_evaluators(admin: Admin) -> None:
    number = _prompt_with_version(admin, "bench-evals")
    evaluators = [
        {"evaluator_key": "contains", "config": {"value": "hello", "case_sensitive": False}},
        {"evaluator_key": "length", "config": {"min": 1, "max": 500, "unit": "chars"}},
        {"evaluator_key": "regex", "config": {"pattern": "^[A-Z]"}},
    ]
    for ev in evaluators:
        admin.post(
            f"/admin/prompts/bench-evals/versions/{number}/evaluators",
            {**ev, "run_mode": "inline", "sampling_rate": 1.0},
        )


def verify_budgets(admin: Admin) -> str:
    budgets = admin.get("/admin/budgets?limit=100")["data"]
    parts = [
        f"{b['scope']} {b['period']}: spent ${float(b['spent_usd']):.4f}, "
        f"reserved ${float(b['reserved_usd']):.4f}"
        for b in budgets
    ]
    return "budgets after the run: " + "; ".join(parts)


def verify_evaluations(admin: Admin) -> str:
    page = admin.get("/admin/evaluations?prompt=bench-evals&limit=100")
    rows = page["data"]
    more = "+" if page.get("next_cursor") else ""
    keys = sorted({str(r.get("evaluator_key")) for r in rows})
    return f"{len(rows)}{more} evaluations recorded for bench-evals ({', '.join(keys) or 'none'})"


CASES: list[Case] = [
    Case(
        "chat",
        "Non-streamed chat completion with no Sluice headers: the bare proxy path "
        "(auth, body pass-through, usage accounting, request log).",
    ),
    Case(
        "chat-stream",
        'Streamed chat completion (`"stream": true`), upstream answers 5 content chunks plus '
        "a usage chunk; the gateway runs against the SSE upstream base URL.",
        stream=True,
    ),
    Case(
        "prompt-header",
        "`X-Sluice-Prompt` on every request: the gateway resolves the prompt's production "
        "version and prepends its messages.",
        headers={"X-Sluice-Prompt": "bench-greeting"},
        setup=setup_prompt,
        expect_headers=("X-Sluice-Prompt-Version",),
        default=False,
    ),
    Case(
        "two-budgets",
        "Two budgets apply to every request (global monthly and per-key daily): reserve "
        "worst-case cost on both, settle to the real cost.",
        setup=setup_two_budgets,
        expect_headers=("X-Sluice-Budget-Remaining-Usd",),
        verify=verify_budgets,
        default=False,
    ),
    Case(
        "full-path",
        "Key auth, `X-Sluice-Prompt` with `X-Sluice-Prompt-Variables` (a production version "
        "with one variable, rendered and prepended), and the two budgets of `two-budgets`.",
        headers={"X-Sluice-Prompt": "bench-full", "X-Sluice-Prompt-Variables": '{"team":"bench"}'},
        setup=setup_full_path,
        expect_headers=("X-Sluice-Prompt-Version", "X-Sluice-Budget-Remaining-Usd"),
        verify=verify_budgets,
        default=False,
    ),
    Case(
        "three-evaluators",
        "A prompt version with three inline evaluators (contains, length, regex) run on "
        "every response.",
        headers={"X-Sluice-Prompt": "bench-evals"},
        setup=setup_three_evaluators,
        expect_headers=("X-Sluice-Prompt-Version",),
        verify=verify_evaluations,
        default=False,
    ),
    Case(
        "chat-2-workers",
        "The `chat` case with `sluice serve --workers 2`: two gateway processes on one port "
        "(SO_REUSEPORT), sharing Postgres and Redis; compare its req/s and CPU/req with `chat` "
        "in the same run.",
        gateway_env={"SLUICE_WORKERS": "2"},
        default=False,
    ),
]


def select_cases(spec: str) -> list[Case]:
    """`default`, `all`, or a comma-separated list of case names."""
    if spec in ("", "default"):
        return [c for c in CASES if c.default]
    if spec == "all":
        return list(CASES)
    by_name = {c.name: c for c in CASES}
    chosen = []
    for name in (n.strip() for n in spec.split(",")):
        if not name:
            continue
        if name not in by_name:
            raise SystemExit(f"unknown case {name!r}; known: {', '.join(by_name)}")
        chosen.append(by_name[name])
    return chosen
