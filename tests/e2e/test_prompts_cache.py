"""Resolution from the in-process cache: no database in the steady state, and changes reach
every replica within a second through Redis."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from sqlalchemy import event

from gateway.core import CorePlugin
from tests.conftest import GatewayFactory, RunningGateway
from tests.e2e.prompts_support import echo, make_prompt, set_label, system, system_text

_REGISTRY_READ = re.compile(
    r"^\s*SELECT\b.*\bFROM (prompts|prompt_versions|prompt_labels|ab_tests)\b", re.S | re.I
)


def _registry_reads(gateway: RunningGateway) -> list[str]:
    """Every registry SELECT this gateway runs from now on."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if _REGISTRY_READ.search(statement):
            seen.append(statement)

    event.listen(
        gateway.plugin(CorePlugin).core.value.engine.sync_engine, "before_cursor_execute", record
    )
    return seen


def _within_a_second(check: Callable[[], bool]) -> float:
    """Poll until `check()` holds; fail after one second. Returns the time it took."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < 1.0, "the change did not arrive within one second"
        time.sleep(0.01)
    return time.monotonic() - started


def test_steady_state_resolution_reads_no_database(gateway: RunningGateway) -> None:
    make_prompt(gateway, "steady", system("Hi {{n}}", variables=["n"]))
    client = gateway.openai()
    headers = {"X-Sluice-Prompt": "steady", "X-Sluice-Prompt-Variables": '{"n": 1}'}
    echo(client, headers)  # warms the cache
    reads = _registry_reads(gateway)
    for _ in range(30):
        received, _ = echo(client, headers)
        assert system_text(received) == "Hi 1"
    assert reads == []


def test_changes_reach_another_replica_within_a_second(
    start_gateway: GatewayFactory, database_url: str, redis_url: str
) -> None:
    a = start_gateway(database_url, SLUICE_REDIS_URL=redis_url)
    b = start_gateway(database_url, SLUICE_REDIS_URL=redis_url)
    make_prompt(a, "shared", system("one"), system("two"))
    set_label(a, "shared", "production", 1)
    client = b.openai(a.create_key())

    def served(headers: dict[str, str] | None = None) -> str:
        received, _ = echo(client, {"X-Sluice-Prompt": "shared", **(headers or {})})
        return system_text(received)

    assert served() == "one"  # B has it cached now, for up to a minute without notices
    reads = _registry_reads(b)
    assert served() == "one" and reads == []

    set_label(a, "shared", "production", 2)
    _within_a_second(lambda: served() == "two")

    a.admin.post("/admin/prompts/shared/versions", json=system("three"))
    _within_a_second(lambda: served({"X-Sluice-Prompt-Label": "latest"}) == "three")

    test = a.admin.post(
        "/admin/ab-tests",
        json={
            "prompt": "shared",
            "variants": [
                {"name": "x", "version": 3, "weight": 1},
                {"name": "y", "version": 3, "weight": 0},
            ],
            "start": True,
        },
    ).json()
    _within_a_second(lambda: served() == "three")
    _, raw = echo(client, {"X-Sluice-Prompt": "shared"})
    assert raw.headers["x-sluice-ab-variant"] == "x"
    a.admin.post(f"/admin/ab-tests/{test['id']}/stop")
    _within_a_second(lambda: served() == "two")

    a.admin.delete("/admin/prompts/shared")  # logged responses: archived
    _within_a_second(
        lambda: (
            b.http.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {client.api_key}", "X-Sluice-Prompt": "shared"},
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            ).status_code
            == 404
        )
    )
