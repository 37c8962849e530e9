"""Stored responses: `GET/DELETE /v1/responses/{id}`, `GET .../input_items`, `POST .../cancel`.

A response lives on the upstream that created it, so each call goes there. Which one that was
is remembered when the response passes through (in-process, for the moments before the request
log's row is written) and read back from the request log (`upstream_response_id`, `upstream`)
after that or on another worker. Only the key that created a response may reach it: another
key gets the same 404 as an id that never existed, so ids cannot be probed across keys.
"""

from __future__ import annotations

import re
from collections import OrderedDict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.models import RequestLog
from gateway.errors import NotFound, SluiceError
from gateway.keys.service import KeyService
from gateway.proxy.context import RawHeaders, parse_call_headers
from gateway.upstream.provider import Provider, UpstreamReply
from gateway.upstream.routing import ModelRouter

__all__ = ["ResponseNotFound", "ResponseObjects", "ResponseOwners"]

# OpenAI's ids are `resp_` and hex; anything that could change the upstream path is refused.
_RESPONSE_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")
_RECENT = 10_000  # responses remembered in-process, newest first out last
ENDPOINT = "responses"


class ResponseNotFound(NotFound):
    code = "response_not_found"


class ResponseOwners:
    """Which upstream created a response, and under which key."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession] | None) -> None:
        self._sessions = sessions
        self._recent: OrderedDict[str, tuple[str, str | None]] = OrderedDict()

    def remember(self, response_id: str, upstream: str, key_id: str | None) -> None:
        self._recent[response_id] = (upstream, key_id)
        if len(self._recent) > _RECENT:
            self._recent.popitem(last=False)

    async def find(self, response_id: str) -> tuple[str, str | None] | None:
        """(upstream name, key id) of the call that created `response_id`, or None."""
        known = self._recent.get(response_id)
        if known is not None or self._sessions is None:
            return known
        query = (
            select(RequestLog.upstream, RequestLog.key_id)
            .where(
                RequestLog.upstream_response_id == response_id,
                RequestLog.endpoint == ENDPOINT,
            )
            .order_by(RequestLog.created_at.desc())
            .limit(1)
        )
        async with self._sessions() as session:
            row = (await session.execute(query)).first()
        if row is None or row[0] is None:
            return None
        return row[0], row[1]


class ResponseObjects:
    """Forwards the calls on a stored response to the upstream that holds it."""

    def __init__(
        self, *, keys: KeyService, router: ModelRouter, provider: Provider, owners: ResponseOwners
    ) -> None:
        self.keys = keys
        self.router = router
        self.provider = provider
        self.owners = owners

    async def call(
        self,
        headers: RawHeaders,
        method: str,
        response_id: str,
        action: str = "",
        query: str = "",
    ) -> tuple[UpstreamReply, str]:
        """The upstream's answer to `method /responses/{id}{action}?{query}`, and the request
        id. `action` is "", "/input_items" or "/cancel"."""
        call = parse_call_headers(headers)
        try:
            key = await self.keys.authenticate(call.authorization)
            owner = (
                await self.owners.find(response_id) if _RESPONSE_ID.fullmatch(response_id) else None
            )
            upstream = self.router.upstreams.get(owner[0]) if owner is not None else None
            if owner is None or upstream is None or owner[1] != key.id:
                raise ResponseNotFound(
                    f"No response with id '{response_id[:200]}' was created with this key "
                    "through this gateway.",
                    param="response_id",
                )
            path = f"/responses/{response_id}{action}" + (f"?{query}" if query else "")
            if method == "GET":
                reply = await self.provider.get(upstream, path)
            elif method == "DELETE":
                reply = await self.provider.delete(upstream, path)
            else:
                reply = await self.provider.complete(upstream, path, b"")
        except SluiceError as exc:
            exc.headers.setdefault("x-sluice-request-id", call.request_id)
            raise
        reply.headers["x-sluice-upstream"] = upstream.name
        return reply, call.request_id
