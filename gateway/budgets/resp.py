"""A lean, pipelined Redis connection for the ledger: one socket, RESP2, replies in order.

Every budgeted request makes two ledger calls on its critical path, and redis-py's asyncio
client spends about 100 µs of CPU per command in connection-pool and task bookkeeping (measured
in bench/budget_path.py) - more than the whole budget path may add. This connection writes each
command the moment it is called and resolves the callers' futures in order as replies arrive,
so concurrent requests share one socket with no locks and no per-command tasks (about 15 µs).
Commands sent during one turn of the event loop go out in one write.
It speaks only what the ledger needs: commands out, and simple, error, integer, bulk and array
replies back. URLs as SLUICE_REDIS_URL takes them: `redis://`, `rediss://` (TLS), `unix://`, with
user, password and db. A lost connection fails the calls in flight; the next call reconnects.

Each write to Redis is a syscall, and each reply read another turn of the event loop; py-spy
put a sixth of the budgeted path's samples in the ledger's writes (see
`bench/results/budget-path-http.md`). `send_soon` therefore queues a command that nobody waits
for on the request path (a settlement) and writes it in front of the next command sent, or after
`DEFER_S` if none comes: on a busy gateway a settlement and the next reservation share one write
and one read. The queued command still runs before any command sent
after it, because it goes out first on the same socket.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["ReplyError", "RespConnection", "Target"]

Reply = int | bytes | list[Any] | None

# How long a queued command may wait for company: far below any hold's lifetime and the store
# timeout, and above the gap between one request's answer and the next at any real load.
DEFER_S = 0.002


@dataclass(frozen=True, slots=True)
class Target:
    host: str = "localhost"
    port: int = 6379
    path: str | None = None
    tls: bool = False
    username: str | None = None
    password: str | None = None
    db: int = 0

    @classmethod
    def from_url(cls, url: str) -> Target:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        db_text = parts.path.strip("/") if parts.scheme != "unix" else ""
        db = int(query.get("db", [db_text or "0"])[0])
        password = unquote(parts.password) if parts.password else None
        username = unquote(parts.username) if parts.username else None
        if parts.scheme == "unix":
            return cls(path=parts.path, username=username, password=password, db=db)
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or 6379,
            tls=parts.scheme == "rediss",
            username=username,
            password=password,
            db=db,
        )


class ReplyError(Exception):
    """Redis answered a command with an error (e.g. NOSCRIPT); the connection is fine."""


class _Incomplete(Exception):
    """The buffer holds only part of a reply."""


def encode_command(args: tuple[str | int | bytes, ...]) -> bytes:
    """A command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _parse(buffer: bytearray, start: int) -> tuple[Reply | ReplyError, int]:
    """One reply from `buffer` at `start`, and where the next one begins."""
    end = buffer.find(b"\r\n", start)
    if end == -1:
        raise _Incomplete
    kind, line = buffer[start : start + 1], bytes(buffer[start + 1 : end])
    position = end + 2
    if kind == b":":
        return int(line), position
    if kind == b"+":
        return line, position
    if kind == b"-":
        return ReplyError(line.decode("utf-8", "replace")), position
    if kind == b"$":
        length = int(line)
        if length < 0:
            return None, position
        if len(buffer) < position + length + 2:
            raise _Incomplete
        return bytes(buffer[position : position + length]), position + length + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, position
        items: list[Any] = []
        for _ in range(count):
            item, position = _parse(buffer, position)
            items.append(item)
        return items, position
    raise ConnectionError(f"Redis sent a reply this client does not read: {kind!r}")


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[Reply]] = deque()
        self.buffer = bytearray()
        self.lost: Exception | None = None
        self.queued: list[bytes] = []
        self._flush: asyncio.Handle | None = None
        self._urgent = False
        """`_flush` runs this turn of the loop (a command was sent), not after DEFER_S."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's does not subclass asyncio.Transport, but behaves as one).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        position = 0
        try:
            while position < len(self.buffer):
                reply, position = _parse(self.buffer, position)
                future = self.waiting.popleft()
                if future.done():  # its caller timed out; the reply still had to be read
                    continue
                if isinstance(reply, ReplyError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except _Incomplete:
            pass
        except (ConnectionError, IndexError, ValueError) as exc:
            self.connection_lost(ConnectionError(f"unreadable reply from Redis: {exc}"))
            if self.transport is not None:
                self.transport.abort()
            return
        del self.buffer[:position]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionError("Redis closed the connection")
        self.queued.clear()  # their futures are in `waiting`: they fail below, never half-sent
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self._urgent = False
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError(f"lost the Redis connection: {self.lost}"))

    def _queue(self, command: bytes) -> asyncio.Future[Reply]:
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        if self.lost is not None or self.transport is None or self.transport.is_closing():
            future.set_exception(ConnectionError("not connected to Redis"))
            return future
        self.waiting.append(future)
        self.queued.append(command)
        return future

    def send(self, command: bytes) -> asyncio.Future[Reply]:
        """Queue `command`, written once this turn of the event loop is done: the commands of
        every request the turn handled go out in one write, in the order they were sent."""
        future = self._queue(command)
        if self.queued and not self._urgent:
            if self._flush is not None:
                self._flush.cancel()
            self._flush = asyncio.get_running_loop().call_soon(self.flush)
            self._urgent = True
        return future

    def send_soon(self, command: bytes) -> asyncio.Future[Reply]:
        """`send`, written with the next command sent, or within DEFER_S if none is."""
        future = self._queue(command)
        if self.queued and self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(DEFER_S, self.flush)
        return future

    def flush(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self._urgent = False
        if self.queued and self.transport is not None and not self.transport.is_closing():
            data = b"".join(self.queued)
            self.queued.clear()
            self.transport.write(data)


class RespConnection:
    """Commands to one Redis, pipelined over one socket that is reopened when it breaks."""

    def __init__(self, url: str) -> None:
        self._target = Target.from_url(url)
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        target = self._target
        if target.path is not None:
            _, protocol = await loop.create_unix_connection(_Protocol, target.path)
        else:
            _, protocol = await loop.create_connection(
                _Protocol,
                target.host,
                target.port,
                ssl=ssl.create_default_context() if target.tls else None,
            )
        setup: list[tuple[str | int, ...]] = []
        if target.password:
            auth = (target.username, target.password) if target.username else (target.password,)
            setup.append(("AUTH", *auth))
        if target.db:
            setup.append(("SELECT", target.db))
        try:
            for command in setup:
                await protocol.send(encode_command(command))
        except BaseException:
            if protocol.transport is not None:
                protocol.transport.close()
            raise
        return protocol

    async def _ready(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and protocol.lost is None:
            return protocol
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:  # concurrent callers share one reconnection
            if self._protocol is None or self._protocol.lost is not None:
                self._protocol = await self._connect()
            return self._protocol

    async def call(self, *args: str | int | bytes) -> Reply:
        """Send one command and wait for its reply (ReplyError for an error reply)."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._ready()
        return await protocol.send(encode_command(args))

    def send_now(self, *args: str | int | bytes) -> Awaitable[Reply]:
        """Send the command (written this turn of the loop, when connected) and return its
        reply to await later.

        Commands sent on one connection run in Redis in the order sent, so a command sent now
        runs before any this process sends afterwards, whenever its reply is read.
        """
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            return self.call(*args)  # reconnecting: written once connected
        return protocol.send(encode_command(args))

    def send_soon(self, *args: str | int | bytes) -> Awaitable[Reply]:
        """`send_now` for a command whose reply can wait: queued to share the next write.

        It still runs in Redis before any command this process sends after it."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            return self.call(*args)
        return protocol.send_soon(encode_command(args))

    async def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.flush()
            protocol.transport.close()
