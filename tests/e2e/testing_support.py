"""Shared steps for the test-suite tests: suites of cases, starting runs, waiting for them."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import RunningGateway
from tests.e2e.prompts_support import make_prompt, set_label, system

FINISHED = ("completed", "failed", "cancelled")


def suite_prompt(gateway: RunningGateway, slug: str, *versions: dict[str, Any]) -> None:
    """`slug` with `versions` (default: one on gpt-4o-mini), v1 labelled production."""
    make_prompt(gateway, slug, *(versions or (system("Answer briefly.", model="gpt-4o-mini"),)))
    set_label(gateway, slug, "production", 1)


def add_case(
    gateway: RunningGateway, slug: str, name: str, reply: str, **fields: Any
) -> dict[str, Any]:
    """A case whose user turn makes the fake answer `reply` (a directive string)."""
    body = {"name": name, "messages": [{"role": "user", "content": reply}], **fields}
    response = gateway.admin.post(f"/admin/prompts/{slug}/tests", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def start_run(gateway: RunningGateway, **body: Any) -> dict[str, Any]:
    response = gateway.admin.post("/admin/test-runs", json=body)
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()
    return run


def get_run(gateway: RunningGateway, run_id: str, **params: Any) -> dict[str, Any]:
    response = gateway.admin.get(f"/admin/test-runs/{run_id}", params=params)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def wait_for_run(
    gateway: RunningGateway, run_id: str, timeout: float = 30.0, status: tuple[str, ...] = FINISHED
) -> dict[str, Any]:
    """Poll until the run reaches one of `status`."""
    deadline = time.monotonic() + timeout
    run = get_run(gateway, run_id)
    while run["status"] not in status:
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run['status']}: {run}")
        time.sleep(0.05)
        run = get_run(gateway, run_id)
    return run


def results(gateway: RunningGateway, run_id: str) -> list[dict[str, Any]]:
    response = gateway.admin.get(f"/admin/test-runs/{run_id}/results")
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error
