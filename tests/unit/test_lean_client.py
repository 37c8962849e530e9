"""The lean upstream client against a tiny asyncio HTTP server that misbehaves on demand.

The request path picks the server's behaviour, so each test reads as the edge case it covers.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import uvloop

from gateway.errors import UpstreamError, UpstreamTimeout
from gateway.settings import UpstreamSettings
from gateway.upstream.lean import HIGH_WATER, LeanProvider
from gateway.upstream.provider import Provider
from gateway.upstream.routing import Upstream

Writer = asyncio.StreamWriter


def _response(body: bytes, *extra: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class TinyServer:
    """HTTP/1.1 keep-alive server; `connections` counts accepted TCP connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self.routes: dict[str, Callable[[Writer, bytes, int], Awaitable[bool]]] = {}

    async def start(self, tls: ssl.SSLContext | None = None) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                path = head.split(b" ")[1].decode()
                served += 1
                keep = await self.routes[path](writer, head + body, served)
                await writer.drain()
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _simple(data: bytes, keep: bool = True) -> Callable[[Writer, bytes, int], Awaitable[bool]]:
    async def route(writer: Writer, request: bytes, served: int) -> bool:
        writer.write(data)
        return keep

    return route


@pytest.fixture
async def server() -> AsyncIterator[TinyServer]:
    tiny = TinyServer()
    await tiny.start()
    yield tiny
    assert tiny._server is not None
    tiny._server.close()


def _provider(
    *,
    connect_timeout: float = 2.0,
    read_timeout: float = 2.0,
    total_timeout: float = 10.0,
    max_connections: int = 16,
    idle_timeout: float = 60.0,
) -> LeanProvider:
    settings = UpstreamSettings(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        total_timeout=total_timeout,
        max_connections=max_connections,
    )
    return LeanProvider(settings, idle_timeout=idle_timeout)


def _upstream(server: TinyServer, key: str | None = "sk-up") -> Upstream:
    return Upstream("tiny", f"http://127.0.0.1:{server.port}/v1", key)


@pytest.fixture
async def lean() -> AsyncIterator[LeanProvider]:
    provider = _provider()
    yield provider
    await provider.close()


async def test_request_is_one_buffer_with_the_gateway_headers(
    server: TinyServer, lean: LeanProvider
) -> None:
    seen: list[bytes] = []

    async def echo(writer: Writer, request: bytes, served: int) -> bool:
        seen.append(request)
        writer.write(_response(b"{}", "X-Request-Id: req-1", "Retry-After: 3", "Server: tiny"))
        return True

    server.routes["/v1/chat/completions"] = echo
    reply = await lean.complete(_upstream(server), "/chat/completions", b'{"a":1}')
    assert (reply.status, reply.body) == (200, b"{}")
    assert reply.headers == {"x-request-id": "req-1", "retry-after": "3"}
    assert seen == [
        b"POST /v1/chat/completions HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{server.port}\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: 7\r\n"
        b"Authorization: Bearer sk-up\r\nUser-Agent: sluice-gateway\r\n\r\n"
        b'{"a":1}'
    ]


async def test_get_without_a_key_sends_no_body_and_no_authorization(
    server: TinyServer, lean: LeanProvider
) -> None:
    seen: list[bytes] = []

    async def echo(writer: Writer, request: bytes, served: int) -> bool:
        seen.append(request)
        writer.write(_response(b'{"data":[]}'))
        return True

    server.routes["/v1/models"] = echo
    reply = await lean.get(_upstream(server, key=None), "/models")
    assert reply.body == b'{"data":[]}'
    assert seen == [
        b"GET /v1/models HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{server.port}\r\n".encode()
        + b"User-Agent: sluice-gateway\r\n\r\n"
    ]


async def test_sequential_requests_reuse_one_connection(
    server: TinyServer, lean: LeanProvider
) -> None:
    server.routes["/v1/x"] = _simple(_response(b"ok"))
    for _ in range(20):
        assert (await lean.complete(_upstream(server), "/x", b"{}")).body == b"ok"
    assert server.connections == 1
    assert lean.open_connections == 1


async def test_chunked_body_is_decoded_and_streamed(server: TinyServer, lean: LeanProvider) -> None:
    async def chunked(writer: Writer, request: bytes, served: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"data: 1\n\n", b"data: 2\n\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        return True

    server.routes["/v1/s"] = chunked
    stream = await lean.stream(_upstream(server), "/s", b"{}")
    pieces = [piece async for piece in stream.chunks()]
    stream.close()
    assert b"".join(pieces) == b"data: 1\n\ndata: 2\n\n"
    assert len(pieces) == 2  # delivered as they arrived, not at the end
    assert (await lean.complete(_upstream(server), "/s", b"{}")).body.endswith(b"data: 2\n\n")
    assert server.connections == 1


async def test_connection_close_answer_is_not_pooled(
    server: TinyServer, lean: LeanProvider
) -> None:
    server.routes["/v1/c"] = _simple(_response(b"bye", "Connection: close"), keep=False)
    for _ in range(3):
        assert (await lean.complete(_upstream(server), "/c", b"{}")).body == b"bye"
    assert server.connections == 3
    assert lean.open_connections == 0


async def test_http10_body_ends_at_eof(server: TinyServer, lean: LeanProvider) -> None:
    server.routes["/v1/old"] = _simple(b"HTTP/1.0 200 OK\r\n\r\nuntil the end", keep=False)
    reply = await lean.complete(_upstream(server), "/old", b"{}")
    assert (reply.status, reply.body) == (200, b"until the end")
    assert lean.open_connections == 0


async def test_stale_pooled_connection_is_retried_once_on_a_fresh_one(
    server: TinyServer, lean: LeanProvider
) -> None:
    # Like a server whose idle timeout fired as our next request went out: it reads the
    # request, then closes without a byte.
    async def once_per_connection(writer: Writer, request: bytes, served: int) -> bool:
        if served > 1:
            return False
        writer.write(_response(b"fresh"))
        return True

    server.routes["/v1/r"] = once_per_connection
    for _ in range(3):
        assert (await lean.complete(_upstream(server), "/r", b"{}")).body == b"fresh"
    assert server.connections == 3


async def test_fresh_connection_closed_unanswered_is_not_retried(
    server: TinyServer, lean: LeanProvider
) -> None:
    async def hang_up(writer: Writer, request: bytes, served: int) -> bool:
        return False

    server.routes["/v1/h"] = hang_up
    with pytest.raises(UpstreamError, match="unanswered"):
        await lean.complete(_upstream(server), "/h", b"{}")
    assert server.connections == 1


async def test_eof_mid_body_is_an_upstream_error(server: TinyServer, lean: LeanProvider) -> None:
    server.routes["/v1/cut"] = _simple(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", False
    )
    with pytest.raises(UpstreamError, match="mid-answer"):
        await lean.complete(_upstream(server), "/cut", b"{}")
    assert lean.open_connections == 0


async def test_malformed_response_is_an_upstream_error(
    server: TinyServer, lean: LeanProvider
) -> None:
    server.routes["/v1/bad"] = _simple(b"HELLO THERE\r\n\r\n")
    with pytest.raises(UpstreamError, match="malformed"):
        await lean.complete(_upstream(server), "/bad", b"{}")


async def test_read_timeout_is_silence_between_bytes(server: TinyServer) -> None:
    lean = _provider(read_timeout=0.3)

    async def trickle(writer: Writer, request: bytes, served: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n")
        for gap in (0.15, 0.15, 0.15, 0.15, 1.0, 0.0):  # slow but never silent 0.3 s, then silent
            await writer.drain()
            await asyncio.sleep(gap)
            writer.write(b"x")
        return True

    server.routes["/v1/t"] = trickle
    stream = await lean.stream(_upstream(server), "/t", b"{}")
    received = b""
    with pytest.raises(UpstreamTimeout):
        async for piece in stream.chunks():
            received += piece
    stream.close()
    assert received == b"xxxx"
    await lean.close()


async def test_total_timeout_bounds_the_whole_call(server: TinyServer) -> None:
    lean = _provider(read_timeout=5.0, total_timeout=0.5)

    async def endless(writer: Writer, request: bytes, served: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(100):
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
        return False

    server.routes["/v1/e"] = endless
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(UpstreamTimeout):
        await lean.complete(_upstream(server), "/e", b"{}")
    assert 0.4 < loop.time() - started < 1.5
    await lean.close()


async def test_connection_refused_is_502_and_connect_timeout_is_504() -> None:
    lean = _provider(connect_timeout=0.3)
    with pytest.raises(UpstreamError, match="could not be reached"):
        await lean.complete(Upstream("gone", "http://127.0.0.1:9/v1", None), "/x", b"{}")
    # A listener whose accept queue is full drops further SYNs: the connect hangs.
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)), pytest.raises(UpstreamTimeout):
            await lean.complete(Upstream("full", f"http://127.0.0.1:{port}/v1", None), "/x", b"")
    assert lean.open_connections == 0
    await lean.close()


async def test_slow_consumer_pauses_the_socket(server: TinyServer, lean: LeanProvider) -> None:
    big = b"y" * (4 * HIGH_WATER)
    server.routes["/v1/big"] = _simple(_response(big))
    stream = await lean.stream(_upstream(server), "/big", b"{}")
    await asyncio.sleep(0.2)  # consumer lags: the client stops reading instead of buffering it all
    conn = stream._conn
    assert conn is not None and conn._paused
    assert conn._buffered < 2 * HIGH_WATER
    assert await stream.read() == big
    assert lean.open_connections == 1 and server.connections == 1


async def test_closing_an_unfinished_stream_drops_the_connection(
    server: TinyServer, lean: LeanProvider
) -> None:
    async def slow_sse(writer: Writer, request: bytes, served: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.write(b"0\r\n\r\n")
        return True

    server.routes["/v1/sse"] = slow_sse
    stream = await lean.stream(_upstream(server), "/sse", b"{}")
    async for piece in stream.chunks():
        assert piece == b"hello"
        break
    stream.close()  # what the proxy's finally does when the client went away
    assert lean.open_connections == 0
    assert (await lean.complete(_upstream(server), "/sse", b"{}")).body == b"hello"
    assert server.connections == 2


async def test_64_concurrent_calls_share_a_pool_of_8(server: TinyServer) -> None:
    lean = _provider(max_connections=8)
    peak = 0

    async def slowish(writer: Writer, request: bytes, served: int) -> bool:
        nonlocal peak
        peak = max(peak, lean.open_connections)
        await asyncio.sleep(0.01)
        writer.write(_response(request[-8:]))
        return True

    server.routes["/v1/p"] = slowish
    payloads = [b'{"n":%03d}' % i for i in range(64)]
    replies = await asyncio.gather(
        *(lean.complete(_upstream(server), "/p", payload) for payload in payloads)
    )
    assert [reply.body for reply in replies] == [payload[-8:] for payload in payloads]
    assert server.connections == 8 and peak == 8
    await lean.close()


async def test_idle_connections_close_after_the_idle_timeout(server: TinyServer) -> None:
    lean = _provider(idle_timeout=0.2)
    server.routes["/v1/x"] = _simple(_response(b"ok"))
    await lean.complete(_upstream(server), "/x", b"{}")
    assert lean.open_connections == 1
    await asyncio.sleep(0.5)
    assert lean.open_connections == 0
    await lean.complete(_upstream(server), "/x", b"{}")
    assert server.connections == 2
    await lean.close()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_upstream_with_tls_and_pooling(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    server_tls.set_alpn_protocols(["http/1.1"])
    tiny = TinyServer()
    await tiny.start(server_tls)
    seen: list[bytes] = []

    async def echo(writer: Writer, request: bytes, served: int) -> bool:
        seen.append(request)
        writer.write(_response(b"secure"))
        return True

    tiny.routes["/v1/chat/completions"] = echo
    upstream = Upstream("tls", f"https://127.0.0.1:{tiny.port}/v1", "sk-tls")
    client_tls = ssl.create_default_context(cafile=str(cert))
    lean = LeanProvider(UpstreamSettings(), ssl_context=client_tls)
    for _ in range(3):
        assert (await lean.complete(upstream, "/chat/completions", b"{}")).body == b"secure"
    assert tiny.connections == 1
    assert f"Host: 127.0.0.1:{tiny.port}\r\n".encode() in seen[0]
    await lean.close()
    # Without trusting the self-signed cert, the default context refuses it: a 502.
    strict = LeanProvider(UpstreamSettings())
    with pytest.raises(UpstreamError, match="could not be reached"):
        await strict.complete(upstream, "/chat/completions", b"{}")
    await strict.close()
    assert tiny._server is not None
    tiny._server.close()


def test_lean_provider_is_a_provider() -> None:
    provider: Provider = _provider()
    assert provider is not None


UVLOOP_CASES = [
    test_request_is_one_buffer_with_the_gateway_headers,
    test_sequential_requests_reuse_one_connection,
    test_chunked_body_is_decoded_and_streamed,
    test_connection_close_answer_is_not_pooled,
    test_http10_body_ends_at_eof,
    test_stale_pooled_connection_is_retried_once_on_a_fresh_one,
    test_eof_mid_body_is_an_upstream_error,
    test_malformed_response_is_an_upstream_error,
    test_slow_consumer_pauses_the_socket,
    test_closing_an_unfinished_stream_drops_the_connection,
]


@pytest.mark.parametrize("case", UVLOOP_CASES, ids=lambda case: case.__name__[5:])
def test_under_uvloop(case: Callable[[TinyServer, LeanProvider], Awaitable[None]]) -> None:
    """Production runs on uvloop, whose transports differ from asyncio's in the details."""

    async def main() -> None:
        tiny = TinyServer()
        await tiny.start()
        lean = _provider()
        try:
            await case(tiny, lean)
        finally:
            await lean.close()
            assert tiny._server is not None
            tiny._server.close()

    uvloop.run(main())
