"""What the lean client's requests to one upstream share: the pool key, the address and the
pre-encoded request head (see gateway.upstream.lean)."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from gateway.errors import UpstreamError
from gateway.upstream.routing import Upstream

__all__ = ["Key", "Target"]

Key = tuple[str, str, int]
"""(scheme, host, port): connections are pooled per key."""


class Target:
    """What one upstream's requests share: pool key, address and pre-encoded headers."""

    __slots__ = ("get_head", "host", "key", "path", "port", "post_head", "post_tail", "tls")

    def __init__(self, upstream: Upstream) -> None:
        parts = urlsplit(upstream.base_url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        self.key: Key = (parts.scheme, self.host, self.port)
        self.path = quote(parts.path.rstrip("/"), safe="/%:@!$&'()*+,;=-._~").encode()
        netloc = f"[{self.host}]" if ":" in self.host else self.host
        if parts.port is not None and parts.port != (443 if self.tls else 80):
            netloc += f":{parts.port}"
        auth = f"Authorization: Bearer {upstream.api_key}\r\n" if upstream.api_key else ""
        if any(c in (upstream.api_key or "") for c in "\r\n\0"):
            raise UpstreamError(f"The upstream '{upstream.name}' has an invalid API key.")
        tail = f"{auth}User-Agent: sluice-gateway\r\n\r\n".encode("latin-1")
        self.post_head = (
            f" HTTP/1.1\r\nHost: {netloc}\r\nContent-Type: application/json\r\nContent-Length: "
        ).encode("latin-1")
        self.post_tail = b"\r\n" + tail
        self.get_head = f" HTTP/1.1\r\nHost: {netloc}\r\n".encode("latin-1") + tail

    def request(self, method: str, path: str, payload: bytes | None) -> bytes:
        target = self.path + path.encode("latin-1")
        if payload is None:
            return method.encode() + b" " + target + self.get_head
        return b"".join(
            (method.encode(), b" ", target, self.post_head, b"%d" % len(payload),
             self.post_tail, payload)
        )  # fmt: skip
