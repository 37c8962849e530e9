"""The admin API over HTTP, as the client commands use it: JSON in, JSON out, errors as lines.

A refused call becomes a CommandError naming the call, its status and the gateway's own message
(the OpenAI error shape), so the person sees what to fix and the exit code is 2.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from gateway.cli.command import CommandError
from gateway.cli.endpoint import Endpoint

__all__ = ["AdminClient", "segment"]

_MAX_PAGES = 1000  # 500 rows a page: half a million rows is more than a list verb should print


class AdminClient:
    def __init__(self, endpoint: Endpoint, *, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self._http = httpx.Client(
            base_url=endpoint.url,
            headers={"Authorization": f"Bearer {endpoint.token}"},
            timeout=timeout,
        )

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CommandError(
                f"cannot reach the gateway at {self.endpoint.url}: {exc or type(exc).__name__}"
            ) from None
        if response.status_code >= 400:
            raise CommandError(
                f"{method} {path}: HTTP {response.status_code}: {_message(response)}"
            )
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def every(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every row of a paginated list, following `next_cursor`."""
        rows: list[dict[str, Any]] = []
        query = {**{k: v for k, v in params.items() if v is not None}, "limit": 500}
        for _ in range(_MAX_PAGES):
            page = self.call("GET", path, params=query)
            rows.extend(page["data"])
            if not page.get("next_cursor"):
                break
            query["cursor"] = page["next_cursor"]
        return rows


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:500] or response.reason_phrase


def segment(value: str) -> str:
    """A value typed by a person, safe as one path segment (an id with a `/` stays one id)."""
    return quote(value, safe="")
