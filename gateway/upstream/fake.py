"""Serve a deterministic OpenAI-compatible fake provider for tests, the demo and benchmarks.

Behaviour is steered per request by directives in the text of the last user message (for
embeddings: the last string input), never by server-wide switches, so concurrent tests cannot
disturb each other:

    #echo            content = the received request body as compact, key-sorted JSON
    #reply=TEXT      content = TEXT (up to the end of the line)
    #words=N         content = "w1 w2 ... wN"
    #json            content = a small valid JSON object
    #fault=STATUS    answer HTTP STATUS (400-599) with an OpenAI error; 429 adds Retry-After: 1
    #fault=timeout   wait #sleep=SECONDS (default 30) before answering
    #fault=reset     abort the TCP connection (streams: after a few chunks)
    #fault=malformed streams: one valid chunk then `data: {not json`; otherwise a 200 non-JSON body
    #fault=nousage   omit usage (streams: no usage chunk even with include_usage)
    #fault=flaky:K   answer 500 to the first K requests with this directive and the same #key=ID
    #delay=MS        wait MS milliseconds before each streamed chunk / before a non-stream answer
    #usage=K:V,...   hostile usage: set these counts (JSON scalars, e.g. prompt_tokens:-1000,
                     completion_tokens:1.5); cached_tokens and reasoning_tokens go to the details
    #pad=N           append N bytes of "x" to the content (streams: in one event), or to the
                     message of a #fault=STATUS error
    #headers=N       add about N bytes of response headers (X-Fake-Pad-i, 4 KiB each)

Usage is exact and computed by `gateway.tokens.counting` with the requested model's encoding
(o200k_base for gpt-4o*, fake-* and unknown models): prompts by OpenAI's chat billing rules,
completions as the token count of the content, embeddings as OpenAI bills their input.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import re
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Self

import msgspec
from aiohttp import web

from gateway.tokens.counting import count_chat_prompt, count_embedding_input, count_text

MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "fake-chat", "fake-embed")
JSON_CONTENT = '{"answer":42,"ok":true}'
_CREATED = 1700000000
_MAX_RECORDED = 10_000
_REPLY_RE = re.compile(r"#reply=([^\r\n]*)")
_DIRECTIVE_RE = re.compile(
    r"(?<!\S)#(echo|json|words|fault|sleep|delay|key|usage|pad|headers)(?:=(\S+))?"
)
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
               "reasoning_tokens")  # fmt: skip
_HEADER_PIECE = 4096
_PIECE_RE = re.compile(r"\s*\S+|\s+$")
_FAULT_RE = re.compile(r"[45]\d\d|timeout|reset|malformed|nousage|flaky:\d+")
_COMPLETION_DETAILS = ("reasoning_tokens", "audio_tokens", "accepted_prediction_tokens")
_USAGE_DETAILS = {  # zeros, but present like OpenAI's, so pass-through code meets the real shape
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


def _hostile_usage(usage: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
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


def _pad_headers(size: int) -> dict[str, str]:
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
class _State:
    requests: list[RecordedRequest] = field(default_factory=list)
    flaky: dict[str, int] = field(default_factory=dict)
    seq: int = 0

    def reset(self) -> None:
        self.requests.clear()
        self.flaky.clear()


_STATE = web.AppKey("sluice_fake_state", _State)


def _error(status: int, message: str, code: str | None = None) -> web.Response:
    # OpenAI's types: "requests" for 429, "server_error" for 5xx, else invalid_request_error.
    err_type = {429: "requests", 403: "permission_error"}.get(status, "invalid_request_error")
    err_type = "server_error" if status >= 500 else err_type
    body = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    headers = {"Retry-After": "1"} if status == 429 else None
    return _json(body, status=status, headers=headers)


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # msgspec encodes compactly and several times faster than json.dumps: the fake stays cheap.
    body = msgspec.json.encode(obj)
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


async def _accept(request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
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
    requests = request.app[_STATE].requests
    if len(requests) >= _MAX_RECORDED:  # bound memory in long benchmark runs
        del requests[: _MAX_RECORDED // 2]
    requests.append(recorded)
    if recorded.api_key is None:
        return body, _error(401, "You didn't provide an API key. Use 'Authorization: Bearer KEY'.")
    if bad_json:
        return body, _error(400, "The request body is not a valid JSON object.")
    return body, None


async def _apply_faults(
    request: web.Request, d: Directives, *, streaming: bool
) -> web.StreamResponse | None:
    """Answer faults that preempt a normal answer and wait out timeout/delay; None means go on.

    Streams play reset, malformed and delay out chunk by chunk, so they are handled there."""
    fault = d.fault or ""
    if fault.startswith("flaky:"):
        counters = request.app[_STATE].flaky
        counter_key = f"{fault}\x00{d.key}"
        counters[counter_key] = counters.get(counter_key, 0) + 1
        if counters[counter_key] <= int(fault.partition(":")[2]):
            return _error(500, f"Fake flaky failure {counters[counter_key]} of {fault}.")
    elif fault.isdigit():
        return _error(int(fault), f"Fake fault {fault} requested by directive." + "x" * d.pad)
    elif fault == "timeout":
        await asyncio.sleep(d.sleep_s)
    if streaming:
        return None
    if d.delay_s:
        await asyncio.sleep(d.delay_s)
    if fault == "reset":
        return _abort(request)
    if fault == "malformed":
        return web.Response(body=b'{"id": "fake", "choices": [', content_type="application/json")
    return None


def _abort(request: web.Request) -> web.Response:
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)  # never reaches the client: the connection is gone


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _content(d: Directives, body: dict[str, Any], user_text: str) -> str:
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


def _chat_usage(body: dict[str, Any], model: str, content: str) -> dict[str, Any]:
    prompt = count_chat_prompt(
        model,
        body["messages"],
        tools=body.get("tools"),
        functions=body.get("functions"),
    )
    completion = count_text(model, content)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        **_USAGE_DETAILS,
    }


async def _chat_completions(request: web.Request) -> web.StreamResponse:
    body, rejection = await _accept(request)
    if rejection is not None:
        return rejection
    messages, model = body.get("messages"), body.get("model")
    if not isinstance(messages, list) or not messages or not isinstance(model, str):
        return _error(400, "'model' (string) and 'messages' (non-empty array) are required.")
    user_text = _last_user_text(messages)
    try:
        d = parse_directives(user_text)
    except ValueError as exc:
        return _error(400, str(exc))
    streaming = body.get("stream") is True
    if (preempted := await _apply_faults(request, d, streaming=streaming)) is not None:
        return preempted
    content = _content(d, body, user_text)
    state = request.app[_STATE]
    state.seq += 1
    head: dict[str, Any] = {
        "id": f"chatcmpl-fake{state.seq:08d}",
        "object": "chat.completion.chunk" if streaming else "chat.completion",
        "created": int(time.time()),
        "model": model,
        "service_tier": "default",
        "system_fingerprint": "fp_sluice_fake",
    }
    try:
        usage = None if d.fault == "nousage" else _chat_usage(body, model, content)
        if usage is not None and d.usage:
            usage = _hostile_usage(usage, d.usage)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # Messages or tools the counter cannot read are ones OpenAI would reject as well.
        return _error(400, f"Malformed messages or tools: {exc!r}")
    if streaming:
        return await _stream_chat(request, d, body, head, content, usage)
    message = {"role": "assistant", "content": content, "refusal": None}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    answer = {**head, "choices": [choice]}
    if usage is not None:
        answer["usage"] = usage
    return _json(answer, headers=_pad_headers(d.header_bytes) if d.header_bytes else None)


async def _stream_chat(
    request: web.Request,
    d: Directives,
    body: dict[str, Any],
    head: dict[str, Any],
    content: str,
    usage: dict[str, Any] | None,
) -> web.StreamResponse:
    """Stream like OpenAI: role delta, content deltas, finish, optional usage chunk, [DONE]."""
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            **_pad_headers(d.header_bytes),
        }
    )
    await resp.prepare(request)

    async def send(payload: bytes) -> None:
        if d.delay_s:
            await asyncio.sleep(d.delay_s)
        await resp.write(b"data: " + payload + b"\n\n")

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        obj = {**head, "choices": [choice]}
        if include_usage:  # OpenAI adds "usage": null to every chunk once usage is requested
            obj["usage"] = None
        return msgspec.json.encode(obj)

    await send(chunk({"role": "assistant", "content": "", "refusal": None}))
    if d.fault == "malformed":
        await send(b"{not json")
        await resp.write_eof()
        return resp
    for sent, piece in enumerate(_PIECE_RE.findall(content)):
        if d.fault == "reset" and sent == 2:
            break
        await send(chunk({"content": piece}))
    if d.fault == "reset":
        _abort(request)
        return resp
    await send(chunk({}, "stop"))
    if include_usage and usage is not None:
        final = {**head, "choices": [], "usage": usage}
        await send(msgspec.json.encode(final))
    await send(b"[DONE]")
    await resp.write_eof()
    return resp


def _embedding_inputs(raw: Any) -> list[str | list[int]]:
    """Normalise OpenAI's four input shapes (str, [str], [int], [[int]]) to a list of items."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw:
        if all(isinstance(x, int) for x in raw):
            return [list(raw)]
        if all(isinstance(x, str) for x in raw):
            return list(raw)
        if all(isinstance(x, list) and all(isinstance(t, int) for t in x) for x in raw):
            return [list(x) for x in raw]
    raise ValueError("'input' must be a string, an array of strings, or token arrays.")


async def _embeddings(request: web.Request) -> web.StreamResponse:
    body, rejection = await _accept(request)
    if rejection is not None:
        return rejection
    model, fmt = body.get("model"), body.get("encoding_format", "float")
    dims = body.get("dimensions", 8)
    try:
        items = _embedding_inputs(body.get("input"))
        texts = [x for x in items if isinstance(x, str)]
        d = parse_directives(texts[-1] if texts else "")
    except ValueError as exc:
        return _error(400, str(exc))
    if not isinstance(model, str) or fmt not in ("float", "base64"):
        return _error(400, "'model' is required and 'encoding_format' must be float or base64.")
    if not isinstance(dims, int) or not 1 <= dims <= 4096:
        return _error(400, "'dimensions' must be an integer from 1 to 4096.")
    if (preempted := await _apply_faults(request, d, streaming=False)) is not None:
        return preempted
    data = []
    for index, item in enumerate(items):
        vector = fake_embedding(item, dims)
        encoded: Any = vector
        if fmt == "base64":
            encoded = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = count_embedding_input(model, body["input"])
    answer: dict[str, Any] = {"object": "list", "data": data, "model": model}
    if d.fault != "nousage":
        answer["usage"] = _hostile_usage({"prompt_tokens": tokens, "total_tokens": tokens}, d.usage)
    return _json(answer)


def _model_card(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": "sluice-fake"}


async def _models(request: web.Request) -> web.StreamResponse:
    """List the fixed models, or retrieve one: any listed model or any `fake-*` name exists."""
    _, rejection = await _accept(request)
    if rejection is not None:
        return rejection
    model_id = request.match_info.get("model")
    if model_id is None:
        return _json({"object": "list", "data": [_model_card(m) for m in MODELS]})
    if model_id in MODELS or model_id.startswith("fake-"):
        return _json(_model_card(model_id))
    return _error(404, f"The model '{model_id}' does not exist.", code="model_not_found")


async def _reset(request: web.Request) -> web.StreamResponse:
    request.app[_STATE].reset()
    return _json({"ok": True})


async def _recorded(request: web.Request) -> web.StreamResponse:
    """Expose recorded requests to a test driving a fake that runs in another process."""
    rows = [
        {"method": r.method, "path": r.path, "headers": r.headers, "body": r.body}
        for r in request.app[_STATE].requests
    ]
    return _json(rows)


def create_fake_app() -> web.Application:
    """Build the aiohttp application; its state lives on the app, so apps never share it."""
    app = web.Application(client_max_size=64 * 1024 * 1024)  # benchmarks send large prompts
    app[_STATE] = _State()
    app.router.add_post("/v1/chat/completions", _chat_completions)
    app.router.add_post("/v1/embeddings", _embeddings)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/v1/models/{model}", _models)
    app.router.add_post("/_fake/reset", _reset)
    app.router.add_get("/_fake/requests", _recorded)
    return app


class FakeUpstream:
    """A running fake on an event loop; build it with `start_fake_upstream`."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, scheme: str = "http") -> None:
        self._runner = runner
        self._state = runner.app[_STATE]
        self.host = host
        self.port = port
        self.base_url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._state.requests

    def reset(self) -> None:
        """Forget recorded requests and flaky counters."""
        self._state.reset()

    async def close(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def start_fake_upstream(
    host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
) -> FakeUpstream:
    """Start the fake on `host:port` (0 picks a free port) on the running loop; over HTTPS
    with the server context `tls`."""
    # handler_cancellation stops a delayed or sleeping handler once its client hangs up, and the
    # short shutdown_timeout keeps close() fast even when a #fault=timeout handler is in flight.
    runner = web.AppRunner(
        create_fake_app(), handler_cancellation=True, shutdown_timeout=1.0, access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls)
    await site.start()
    bound_port = int(runner.addresses[0][1])
    return FakeUpstream(runner, host, bound_port, "http" if tls is None else "https")


def run_fake_upstream(host: str = "127.0.0.1", port: int = 8900) -> None:
    """Serve the fake until interrupted (for the CLI)."""
    display = f"[{host}]" if ":" in host else host
    web.run_app(
        create_fake_app(),
        host=host,
        port=port,
        handler_cancellation=True,
        shutdown_timeout=1.0,
        access_log=None,
        print=lambda *_: print(f"Sluice fake upstream on http://{display}:{port}/v1"),
    )


class FakeUpstreamThread:
    """Run the fake on its own event loop in a daemon thread, for synchronous tests.

    Inside the `with` block, `base_url`, `port` and `requests` are those of the running fake."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
    ) -> None:
        self._host, self._port, self._tls = host, port, tls
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._fake: FakeUpstream | None = None
        self.base_url = ""
        self.port = 0
        self.requests: list[RecordedRequest] = []

    def reset(self) -> None:
        """Forget recorded requests and flaky counters."""
        if self._fake is not None:
            self._fake.reset()

    def __enter__(self) -> Self:
        self._thread.start()
        starting = start_fake_upstream(self._host, self._port, self._tls)
        try:
            self._fake = asyncio.run_coroutine_threadsafe(starting, self._loop).result(timeout=30)
        except BaseException:
            self._stop_loop()
            raise
        self.base_url, self.port = self._fake.base_url, self._fake.port
        self.requests = self._fake.requests
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fake is not None:
            closing = self._fake.close()
            asyncio.run_coroutine_threadsafe(closing, self._loop).result(timeout=30)
            self._fake = None
        self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()
