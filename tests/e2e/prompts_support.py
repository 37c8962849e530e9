"""Shared steps for the prompt registry's end-to-end tests: admin calls and echo requests."""

from __future__ import annotations

import json
from typing import Any

import openai

from tests.conftest import RunningGateway


def make_prompt(gateway: RunningGateway, slug: str, *versions: dict[str, Any]) -> None:
    """Create `slug` with `versions` (1, 2, ...) through the admin API."""
    response = gateway.admin.post("/admin/prompts", json={"slug": slug, "description": slug})
    assert response.status_code == 201, response.text
    for number, version in enumerate(versions, start=1):
        response = gateway.admin.post(f"/admin/prompts/{slug}/versions", json=version)
        assert response.status_code == 201, response.text
        assert response.json()["version"] == number


def system(text: str, **extra: Any) -> dict[str, Any]:
    """A version whose one message is a system message."""
    return {"messages": [{"role": "system", "content": text}], **extra}


def set_label(gateway: RunningGateway, slug: str, label: str, version: int) -> None:
    response = gateway.admin.put(f"/admin/prompts/{slug}/labels/{label}", json={"version": version})
    assert response.status_code == 200, response.text


def echo(
    client: openai.OpenAI,
    headers: dict[str, str] | None = None,
    *,
    model: str = "gpt-4o-mini",
    extra_body: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[dict[str, Any], Any]:
    """Send `#echo`; return (the body the upstream received, the raw response)."""
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": "#echo"}],
        extra_headers=headers or {},
        extra_body=extra_body,
        **kwargs,
    )
    completion = raw.parse()
    received: dict[str, Any] = json.loads(completion.choices[0].message.content or "{}")
    return received, raw


def system_text(received: dict[str, Any]) -> str:
    """The first message's content as the upstream received it."""
    content: str = received["messages"][0]["content"]
    return content
