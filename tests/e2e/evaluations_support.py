"""Shared steps for the evaluation tests: prompts with evaluators, traffic, waiting for scores."""

from __future__ import annotations

import time
from typing import Any

import openai

from tests.conftest import RunningGateway
from tests.e2e.prompts_support import make_prompt, set_label, system

JUDGE_RUBRIC = "The answer is correct and polite."
GOOD_JUDGE_REPLY = '{"score": 4, "reason": "ok"}'


def monitored_prompt(
    gateway: RunningGateway, slug: str, *evaluators: dict[str, Any], **version: Any
) -> list[dict[str, Any]]:
    """Create `slug` v1 (label production) with `evaluators` attached; the created configs."""
    make_prompt(gateway, slug, system("Answer briefly.", **version))
    set_label(gateway, slug, "production", 1)
    return [attach(gateway, slug, 1, evaluator) for evaluator in evaluators]


def attach(
    gateway: RunningGateway, slug: str, version: int, body: dict[str, Any]
) -> dict[str, Any]:
    response = gateway.admin.post(f"/admin/prompts/{slug}/versions/{version}/evaluators", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def ask(client: openai.OpenAI, slug: str, text: str, headers: dict[str, str] | None = None) -> str:
    """Send one chat request through prompt `slug`; the request id."""
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": text}],
        extra_headers={"X-Sluice-Prompt": slug, **(headers or {})},
    )
    raw.parse()
    request_id: str = raw.headers["x-sluice-request-id"]
    return request_id


def evaluations(gateway: RunningGateway, **filters: Any) -> list[dict[str, Any]]:
    response = gateway.admin.get("/admin/evaluations", params={"limit": 500, **filters})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def wait_for_evaluations(
    gateway: RunningGateway, count: int, timeout: float = 15.0, **filters: Any
) -> list[dict[str, Any]]:
    """Poll until at least `count` evaluations match `filters`."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = evaluations(gateway, **filters)
        if len(rows) >= count:
            return rows
        time.sleep(0.05)
    raise AssertionError(f"expected {count} evaluations matching {filters}, found {len(rows)}")


def response_scores(gateway: RunningGateway, request_id: str) -> dict[str, Any]:
    response = gateway.admin.get(f"/admin/responses/{request_id}/evaluations")
    assert response.status_code == 200, response.text
    scores: dict[str, Any] = response.json()
    return scores
