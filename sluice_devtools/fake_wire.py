"""What every endpoint of the fake upstream shares: recording, auth, directives, faults.

See sluice_devtools.fake_upstream for the directives; the endpoint modules (fake_upstream.py
for chat and embeddings, fake_responses.py for the Responses API, legacy completions and
moderations) build their answers from these pieces.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import struct
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "fake-chat", "fake-embed")
JSON_CONTENT = '{"answer":42,"ok":true}'
CREATED = 1700000000
_MAX_RECORDED = 10_000
_REPLY_RE = re.compile(r"#reply=([^\r\n]*)")
_DIRECTIVE_RE = re.compile(
    r"(?<!\S)#(echo|json|words|fault|sleep|delay|key|usage|pad|headers)(?:=(\S+))?"
)
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
               "reasoning_tokens")  # fmt: skip
_HEADER_PIECE = 4096
PIECE_RE = re.compile(r"\s*\S+|\s+$")
_FAULT_RE = re.compile(r"[45]\d\d|timeout|reset|malformed|nousage|flaky:\d+")
_COMPLETION_DETAILS = ("reasoning_tokens", "audio_tokens", "accepted_prediction_tokens")
USAGE_DETAILS = {  # zeros, but present like OpenAI's, so pass-through code meets the real shape
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": dict.fromkeys(
        (*_COMPLETION_DETAILS, "rejected_prediction_tokens"), 0
    ),
}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it; header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def api_key(self) -> str | None:
        """The bearer token sent, or None when the Authorization header was absent or not Bearer."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return (token.strip() or None) if scheme.lower() == "bearer" else None


@dataclass(frozen=True, slots=True)
class Directives:
    """What the last user message asked the fake to do."""

    echo: bool = False
    json: bool = False
    reply: str | None = None
    words: int | None = None
    fault: str | None = None
    sleep_s: float = 30.0
    delay_s: float = 0.0
    key: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    pad: int = 0
    header_bytes: int = 0


def _usage_overrides(raw: str) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for pair in filter(None, raw.split(",")):
        name, _, value = pair.partition(":")
        if name not in _USAGE_KEYS:
            raise ValueError(f"bad fake directive value: unknown usage count {name!r}")
        try:
            overrides[name] = msgspec.json.decode(value)
        except msgspec.DecodeError:
            raise ValueError(f"bad fake directive value: {value!r} is not JSON") from None
    return overrides


def hostile_usage(usage: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    usage = {**usage}
    for name, value in overrides.items():
        if name == "cached_tokens":
            usage["prompt_tokens_details"] = {**usage.get("prompt_tokens_details", {}), name: value}
        elif name == "reasoning_tokens":
            details = usage.get("completion_tokens_details", {})
            usage["completion_tokens_details"] = {**details, name: value}
        else:
            usage[name] = value
    return usage


def pad_headers(size: int) -> dict[str, str]:
    return {f"X-Fake-Pad-{i}": "p" * _HEADER_PIECE for i in range(-(-size // _HEADER_PIECE))}


def parse_directives(text: str) -> Directives:
    """Read directives from `text`; raise ValueError on a malformed value (a typo in a test)."""
    replies = _REPLY_RE.findall(text)
    found: dict[str, str] = {}
    for name, value in _DIRECTIVE_RE.findall(_REPLY_RE.sub("", text)):
        found[name] = value
    try:
        words = int(found["words"]) if "words" in found else None
        sleep_s = float(found.get("sleep") or 30.0)
        delay_s = float(found.get("delay") or 0.0) / 1000.0
        pad = int(found.get("pad") or 0)
        header_bytes = int(found.get("headers") or 0)
    except ValueError as exc:
        raise ValueError(f"bad fake directive value: {exc}") from None
    fault = found.get("fault")
    if fault is not None and not _FAULT_RE.fullmatch(fault):
        raise ValueError(f"unknown fake fault {fault!r}")
    usage = _usage_overrides(found.get("usage", ""))
    if (words is not None and words < 0) or min(sleep_s, delay_s, pad, header_bytes) < 0:
        raise ValueError("fake directive values must not be negative")
    return Directives(
        echo="echo" in found,
        json="json" in found,
        reply=replies[-1] if replies else None,
        words=words,
        fault=fault,
        sleep_s=sleep_s,
        delay_s=delay_s,
        key=found.get("key", ""),
        usage=usage,
        pad=pad,
        header_bytes=header_bytes,
    )


def fake_embedding(item: str | list[int], dimensions: int = 8) -> list[float]:
    """The unit-length vector the fake returns for one input, as float32 values."""
    seed = item.encode() if isinstance(item, str) else msgspec.json.encode(item)
    raw = b"".join(
        hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range((dimensions + 7) // 8)
    )
    values = [u / 2**31 - 1.0 for u in struct.unpack(f"<{dimensions}I", raw[: 4 * dimensions])]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    # Round-trip through float32 so float and base64 answers decode to identical numbers.
    packed = struct.pack(f"<{dimensions}f", *(v / norm for v in values))
    return list(struct.unpack(f"<{dimensions}f", packed))


@dataclass
class State:
    requests: list[RecordedRequest] = field(default_factory=list)
    flaky: dict[str, int] = field(default_factory=dict)
    seq: int = 0
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Stored Responses API answers by id, with their input items (fake_responses.py)."""

    def reset(self) -> None:
        self.requests.clear()
        self.flaky.clear()
        self.responses.clear()


STATE = web.AppKey("sluice_fake_state", State)


def error_response(status: int, message: str, code: str | None = None) -> web.Response:
    # OpenAI's types: "requests" for 429, "server_error" for 5xx, else invalid_request_error.
    err_type = {429: "requests", 403: "permission_error"}.get(status, "invalid_request_error")
    err_type = "server_error" if status >= 500 else err_type
    body = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    headers = {"Retry-After": "1"} if status == 429 else None
    return json_response(body, status=status, headers=headers)


def json_response(
    obj: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # msgspec encodes compactly and several times faster than json.dumps: the fake stays cheap.
    body = msgspec.json.encode(obj)
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


async def accept(request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
    """Record the request, then check auth and parse the body (recording first, so tests see
    what a rejected request carried)."""
    raw = await request.read()
    try:
        body: Any = msgspec.json.decode(raw) if raw else {}
    except msgspec.DecodeError:
        body = None
    bad_json, body = not isinstance(body, dict), body if isinstance(body, dict) else {}
    headers = {k.lower(): v for k, v in request.headers.items()}
    recorded = RecordedRequest(request.method, request.path, headers, body)
    requests = request.app[STATE].requests
    if len(requests) >= _MAX_RECORDED:  # bound memory in long benchmark runs
        del requests[: _MAX_RECORDED // 2]
    requests.append(recorded)
    if recorded.api_key is None:
        return body, error_response(
            401, "You didn't provide an API key. Use 'Authorization: Bearer KEY'."
        )
    if bad_json:
        return body, error_response(400, "The request body is not a valid JSON object.")
    return body, None


async def apply_faults(
    request: web.Request, d: Directives, *, streaming: bool
) -> web.StreamResponse | None:
    """Answer faults that preempt a normal answer and wait out timeout/delay; None means go on.

    Streams play reset, malformed and delay out chunk by chunk, so they are handled there."""
    fault = d.fault or ""
    if fault.startswith("flaky:"):
        counters = request.app[STATE].flaky
        counter_key = f"{fault}\x00{d.key}"
        counters[counter_key] = counters.get(counter_key, 0) + 1
        if counters[counter_key] <= int(fault.partition(":")[2]):
            return error_response(500, f"Fake flaky failure {counters[counter_key]} of {fault}.")
    elif fault.isdigit():
        return error_response(
            int(fault), f"Fake fault {fault} requested by directive." + "x" * d.pad
        )
    elif fault == "timeout":
        await asyncio.sleep(d.sleep_s)
    if streaming:
        return None
    if d.delay_s:
        await asyncio.sleep(d.delay_s)
    if fault == "reset":
        return abort(request)
    if fault == "malformed":
        return web.Response(body=b'{"id": "fake", "choices": [', content_type="application/json")
    return None


def abort(request: web.Request) -> web.Response:
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)  # never reaches the client: the connection is gone


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return text_of(message.get("content"))
    return ""


def content_for(d: Directives, body: dict[str, Any], user_text: str) -> str:
    return _base_content(d, body, user_text) + "x" * d.pad


def _base_content(d: Directives, body: dict[str, Any], user_text: str) -> str:
    if d.echo:
        return msgspec.json.encode(body, order="sorted").decode()
    if d.reply is not None:
        return d.reply
    if d.words is not None:
        return " ".join(f"w{i}" for i in range(1, d.words + 1))
    if d.json:
        return JSON_CONTENT
    return f"Hello! You said: {user_text}"
