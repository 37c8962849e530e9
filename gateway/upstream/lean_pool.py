"""The lean client's transport: one HTTP/1.1 connection as an asyncio Protocol parsed by
httptools, and the bounded keep-alive pool of them (see gateway.upstream.lean)."""

from __future__ import annotations

import asyncio
import collections
import ssl
from typing import cast

import httptools

from gateway.errors import UpstreamError, UpstreamTimeout
from gateway.upstream.lean_target import Key as _Key
from gateway.upstream.lean_target import Target
from gateway.upstream.provider import (
    PASS_HEADERS,
    body_too_large,
    default_tls,
    headers_too_large,
    tls_error,
)

__all__ = ["HIGH_WATER", "Connection", "Pool", "StaleConnection"]

HIGH_WATER = 256 * 1024  # buffered body bytes beyond which the socket stops being read
_PASS = frozenset(name.encode() for name in PASS_HEADERS)
_FRAMING = (b"content-length", b"transfer-encoding")


class StaleConnection(Exception):
    """A reused connection closed before any answer byte: safe to retry on a fresh one."""


class Connection(asyncio.Protocol):
    """One upstream connection, carrying at most one request/response at a time."""

    def __init__(self, key: _Key, loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.name = ""
        self.status = 0
        self.headers: dict[str, str] = {}
        self.keep_alive = False
        self._parser: httptools.HttpResponseParser | None = None
        self._pieces: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._received = False
        self._headers_done = False
        self._framed = False
        self.complete = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._read_timeout = 0.0
        self._deadline = 0.0
        self._last_rx = 0.0
        self._max_body = 0
        self._max_head = 0
        self._streamed = False
        self._body_bytes = 0
        self._head_bytes = 0
        self._head_received = 0

    # -- the exchange ------------------------------------------------------------------------

    async def send(
        self,
        request: bytes,
        name: str,
        read_timeout: float,
        deadline: float,
        limits: tuple[int, int, bool],
    ) -> None:
        """Write the request and wait for the response head. `limits`: the most body bytes,
        the most head bytes, and whether the body is a stream (for the error's wording)."""
        self.name = name
        self._max_body, self._max_head, self._streamed = limits
        self._body_bytes = self._head_bytes = self._head_received = 0
        self.status, self.headers, self.keep_alive = 0, {}, False
        self._parser = httptools.HttpResponseParser(self)
        self._received = self._headers_done = self._framed = self.complete = False
        self._error = None
        self._read_timeout, self._deadline = read_timeout, deadline
        self._last_rx = now = self.loop.time()
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            error = self._closed_error()
            self._fail(error)
            raise error
        self._timer = self.loop.call_at(min(now + read_timeout, deadline), self._on_timer)
        transport.write(request)
        while not self._headers_done:
            if self._error is not None:
                raise self._error
            await self._wait()
        if self._error is not None:
            raise self._error

    async def next_piece(self) -> bytes:
        """The body bytes buffered so far, waiting for some; b"" once the body is complete."""
        while True:
            if self._pieces:
                data = self._pieces.popleft() if len(self._pieces) == 1 else b"".join(self._pieces)
                self._pieces.clear()
                self._buffered = 0
                if self._paused and self.transport is not None:
                    self._paused = False
                    self._last_rx = self.loop.time()
                    self.transport.resume_reading()
                return data
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            await self._wait()

    async def _wait(self) -> None:
        self._waiter = waiter = self.loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self._error is None and not self.complete:
            self._error = error
        self._stop_timer()
        self.abort()
        self._wake()

    def abort(self) -> None:
        self.closed = True
        self._stop_timer()
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def idle(self, now: float) -> None:
        """Forget the finished exchange; the connection goes back to the pool."""
        self._parser = None
        self.reused = True
        self.idle_since = now

    def _closed_error(self) -> Exception:
        if self.reused and not self._received:
            return StaleConnection()
        if not self._received:
            return UpstreamError(f"The upstream '{self.name}' closed the connection unanswered.")
        return UpstreamError(f"The upstream '{self.name}' closed the connection mid-answer.")

    # -- timeouts: one lazy timer per exchange, re-armed only when it fires --------------------

    def _on_timer(self) -> None:
        self._timer = None
        if self.complete or self._parser is None:
            return
        now = self.loop.time()
        if now < self._deadline:
            # A paused socket is our consumer's silence, not the upstream's.
            silent_since = now if self._paused else self._last_rx
            if now - silent_since < self._read_timeout:
                when = min(silent_since + self._read_timeout, self._deadline)
                self._timer = self.loop.call_at(when, self._on_timer)
                return
        self._fail(UpstreamTimeout(f"The upstream '{self.name}' did not answer in time."))

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self.complete or self._error is not None:
            self.abort()  # bytes nobody asked for: the connection can't be trusted again
            return
        self._received = True
        self._last_rx = self.loop.time()
        try:
            parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            # A no-op when a callback failed the exchange (a limit) and stopped the parser.
            self._fail(UpstreamError(f"The upstream '{self.name}' sent a malformed response."))
            return
        if not self._headers_done:
            # httptools holds a header until it ends: bound the unfinished head as it grows.
            self._head_received += len(data)
            if self._head_received > self._max_head:
                self._fail(headers_too_large(self.name, self._max_head))

    def eof_received(self) -> bool:
        self._on_close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._on_close()

    def _on_close(self) -> None:
        if self._parser is None or self.complete or self._error is not None:
            self.closed = True
            return
        if self._headers_done and not self._framed:  # HTTP/1.0 style: the body ends at EOF
            self.on_message_complete()
            self.keep_alive = False
            return
        self._fail(self._closed_error())

    # -- httptools callbacks -----------------------------------------------------------------

    def _over_limit(self, error: UpstreamError) -> None:
        self._fail(error)
        raise error  # stops the parser mid-buffer; data_received sees the failure recorded

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > self._max_head:
            self._over_limit(headers_too_large(self.name, self._max_head))
        name = name.lower()
        if name in _PASS:
            self.headers[name.decode()] = value.decode("latin-1")
        elif name in _FRAMING:
            self._framed = True
            # A declared length past the bound is refused before a byte of the body is read.
            if name == b"content-length" and value.isdigit() and int(value) > self._max_body:
                self._over_limit(body_too_large(self.name, self._max_body, streamed=self._streamed))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self.status = self._parser.get_status_code()
        self._headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self._max_body:
            self._over_limit(body_too_large(self.name, self._max_body, streamed=self._streamed))
        self._pieces.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        assert self._parser is not None
        self.complete = True
        self.keep_alive = self._parser.should_keep_alive()
        self._stop_timer()
        self._wake()


class Pool:
    """Keep-alive connections, at most `limit` open in all; idle ones reused newest first."""

    def __init__(
        self, limit: int, idle_timeout: float, connect_timeout: float, tls: ssl.SSLContext | None
    ) -> None:
        self._limit = limit
        self._idle_timeout = idle_timeout
        self._connect_timeout = connect_timeout
        self._tls = tls
        self._idle: dict[_Key, list[Connection]] = {}
        self._open: set[Connection] = set()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._sweeper: asyncio.TimerHandle | None = None

    @property
    def open_connections(self) -> int:
        return len(self._open)

    async def acquire(self, target: Target, name: str, deadline: float, fresh: bool) -> Connection:
        loop = asyncio.get_running_loop()
        while True:
            idle = None if fresh else self._idle.get(target.key)
            while idle:
                conn = idle.pop()
                if not conn.closed and loop.time() - conn.idle_since < self._idle_timeout:
                    return conn
                self.discard(conn)
            if len(self._open) < self._limit:
                return await self._connect(target, name, loop, deadline)
            if not self._close_oldest_idle():
                await self._wait_for_slot(name, deadline)

    async def _connect(
        self, target: Target, name: str, loop: asyncio.AbstractEventLoop, deadline: float
    ) -> Connection:
        conn = Connection(target.key, loop)
        self._open.add(conn)
        tls = (self._tls or default_tls()) if target.tls else None
        try:
            async with asyncio.timeout_at(min(deadline, loop.time() + self._connect_timeout)):
                await loop.create_connection(
                    lambda: conn,
                    target.host,
                    target.port,
                    ssl=tls,
                    server_hostname=target.host if tls else None,
                )
        except TimeoutError:
            self.discard(conn)
            raise UpstreamTimeout(f"The upstream '{name}' did not answer in time.") from None
        except ssl.SSLError as exc:
            self.discard(conn)
            raise tls_error(name, exc) from exc
        except OSError as exc:
            self.discard(conn)
            raise UpstreamError(f"The upstream '{name}' could not be reached.") from exc
        except BaseException:
            self.discard(conn)
            raise
        return conn

    async def _wait_for_slot(self, name: str, deadline: float) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
        except TimeoutError:
            raise UpstreamTimeout(f"The upstream '{name}' did not answer in time.") from None
        finally:
            if waiter.done() and not waiter.cancelled():
                self._wake_one()  # a slot handed to us that we won't use goes to the next
            elif waiter in self._waiters:
                self._waiters.remove(waiter)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _close_oldest_idle(self) -> bool:
        for idle in self._idle.values():
            if idle:
                self.discard(idle.pop(0))
                return True
        return False

    def release(self, conn: Connection) -> None:
        """Pool a connection whose answer was read to the end, or drop it."""
        if conn.closed or not conn.keep_alive or conn not in self._open:
            self.discard(conn)
            return
        loop = conn.loop
        conn.idle(loop.time())
        self._idle.setdefault(conn.key, []).append(conn)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._idle_timeout / 2, self._sweep)
        self._wake_one()

    def discard(self, conn: Connection) -> None:
        conn.abort()
        if conn in self._open:
            self._open.remove(conn)
            self._wake_one()

    def _sweep(self) -> None:
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        for idle in self._idle.values():
            # LIFO lists are oldest first: expired connections are a prefix.
            while idle and (idle[0].closed or now - idle[0].idle_since >= self._idle_timeout):
                conn = idle.pop(0)
                conn.close()
                self._open.discard(conn)
                self._wake_one()
        if any(self._idle.values()):
            self._sweeper = asyncio.get_running_loop().call_later(
                self._idle_timeout / 2, self._sweep
            )

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._open):
            conn.abort()
        self._open.clear()
        self._idle.clear()
