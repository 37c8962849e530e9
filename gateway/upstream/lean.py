"""A lean HTTP/1.1 client for OpenAI-compatible upstreams: asyncio Protocols and httptools.

aiohttp's client costs ~160 µs of CPU per call here (request objects, multidicts, tracing); the
gateway needs one method, a few fixed headers and three response headers, so this client writes
one bytes buffer per request and parses the answer with httptools' C parser.

    LeanProvider ── Pool (lean_pool.py): keep-alive connections per (scheme, host, port),
                 │  LIFO, bounded
                 └─ Connection (asyncio.Protocol): one request at a time, body pieces buffered
                    with backpressure, one lazy timer for the read and total timeouts

Failures map to gateway errors as in `gateway.upstream.provider`:
    connect timeout, read silence, total deadline            -> UpstreamTimeout (504)
    refused, reset or EOF before an answer                    -> UpstreamError (502)
    a TLS certificate that does not verify                    -> UpstreamError (502), logged
    head or body past SLUICE_UPSTREAM_MAX_*_BYTES             -> UpstreamError (502)
    reset or EOF mid-body, malformed HTTP                     -> UpstreamError (502)
A pooled connection that the upstream closed before sending any byte of the answer (the
keep-alive race) is retried once on a fresh connection.

Not handled: proxies, HTTP/2, compression, redirects, 1xx/Expect, query strings in base_url.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

from gateway.settings import UpstreamSettings
from gateway.upstream.lean_pool import HIGH_WATER, Connection, Pool, StaleConnection
from gateway.upstream.lean_target import Target
from gateway.upstream.provider import UpstreamReply, UpstreamStream
from gateway.upstream.routing import Upstream

__all__ = ["HIGH_WATER", "LeanProvider", "LeanStream"]


class LeanStream(UpstreamStream):
    """An open upstream response, as `UpstreamStream`: status and headers, then the body."""

    def __init__(
        self, upstream: Upstream, conn: Connection, pool: Pool, settings: UpstreamSettings
    ) -> None:
        # No super().__init__(): that one wraps an aiohttp response; only the interface is shared.
        # The connection enforces the body bound as bytes arrive.
        self.upstream = upstream
        self.max_bytes = settings.max_stream_bytes
        self.max_event_bytes = settings.max_event_bytes
        self.status = conn.status
        self.headers = conn.headers
        self._conn: Connection | None = conn
        self._pool = pool

    async def read(self) -> bytes:
        pieces = []
        async for piece in self.chunks():
            pieces.append(piece)
        return b"".join(pieces)

    async def chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        while piece := await conn.next_piece():
            yield piece
        self._conn = None
        self._pool.release(conn)

    def close(self) -> None:
        """Drop the connection unless the body was read to its end (then it is pooled)."""
        if self._conn is not None:
            self._pool.discard(self._conn)
            self._conn = None


class LeanProvider:
    """The `Provider` protocol over the lean client; `await close()` when the app stops."""

    def __init__(
        self,
        settings: UpstreamSettings,
        *,
        idle_timeout: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._settings = settings
        self._pool = Pool(
            settings.max_connections, idle_timeout, settings.connect_timeout, ssl_context
        )
        self._targets: dict[Upstream, Target] = {}

    @property
    def open_connections(self) -> int:
        """Connections open now, busy or idle."""
        return self._pool.open_connections

    async def complete(self, upstream: Upstream, path: str, payload: bytes) -> UpstreamReply:
        response = await self._open("POST", upstream, path, payload, streamed=False)
        try:
            body = await response.read()
        finally:
            response.close()
        return UpstreamReply(response.status, body, response.headers)

    async def stream(self, upstream: Upstream, path: str, payload: bytes) -> LeanStream:
        return await self._open("POST", upstream, path, payload, streamed=True)

    async def get(self, upstream: Upstream, path: str) -> UpstreamReply:
        return await self._without_body("GET", upstream, path)

    async def delete(self, upstream: Upstream, path: str) -> UpstreamReply:
        return await self._without_body("DELETE", upstream, path)

    async def _without_body(self, method: str, upstream: Upstream, path: str) -> UpstreamReply:
        response = await self._open(method, upstream, path, None, streamed=False)
        try:
            body = await response.read()
        finally:
            response.close()
        return UpstreamReply(response.status, body, response.headers)

    async def close(self) -> None:
        self._pool.close()

    async def _open(
        self, method: str, upstream: Upstream, path: str, payload: bytes | None, *, streamed: bool
    ) -> LeanStream:
        target = self._targets.get(upstream)
        if target is None:
            target = self._targets[upstream] = Target(upstream)
        settings = self._settings
        deadline = asyncio.get_running_loop().time() + settings.total_timeout
        request = target.request(method, path, payload)
        max_body = settings.max_stream_bytes if streamed else settings.max_body_bytes
        limits = (max_body, settings.max_header_bytes, streamed)
        fresh = False
        while True:
            conn = await self._pool.acquire(target, upstream.name, deadline, fresh)
            try:
                await conn.send(request, upstream.name, settings.read_timeout, deadline, limits)
            except StaleConnection:
                self._pool.discard(conn)
                fresh = True  # a fresh connection is never stale: this retries once
                continue
            except BaseException:
                self._pool.discard(conn)
                raise
            return LeanStream(upstream, conn, self._pool, settings)
