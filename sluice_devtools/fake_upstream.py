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
import ssl
import struct
import threading
import time
from typing import Any, Self

import msgspec
from aiohttp import web

from gateway.tokens.counting import count_chat_prompt, count_embedding_input, count_text
from sluice_devtools import fake_responses
from sluice_devtools.fake_wire import (
    CREATED,
    MODELS,
    PIECE_RE,
    STATE,
    USAGE_DETAILS,
    Directives,
    RecordedRequest,
    State,
    abort,
    accept,
    apply_faults,
    content_for,
    error_response,
    fake_embedding,
    hostile_usage,
    json_response,
    last_user_text,
    pad_headers,
    parse_directives,
)

__all__ = [
    "FakeUpstream",
    "FakeUpstreamThread",
    "RecordedRequest",
    "create_fake_app",
    "fake_embedding",
    "parse_directives",
    "run_fake_upstream",
    "start_fake_upstream",
]


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
        **USAGE_DETAILS,
    }


async def _chat_completions(request: web.Request) -> web.StreamResponse:
    body, rejection = await accept(request)
    if rejection is not None:
        return rejection
    messages, model = body.get("messages"), body.get("model")
    if not isinstance(messages, list) or not messages or not isinstance(model, str):
        return error_response(
            400, "'model' (string) and 'messages' (non-empty array) are required."
        )
    user_text = last_user_text(messages)
    try:
        d = parse_directives(user_text)
    except ValueError as exc:
        return error_response(400, str(exc))
    streaming = body.get("stream") is True
    if (preempted := await apply_faults(request, d, streaming=streaming)) is not None:
        return preempted
    content = content_for(d, body, user_text)
    state = request.app[STATE]
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
            usage = hostile_usage(usage, d.usage)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # Messages or tools the counter cannot read are ones OpenAI would reject as well.
        return error_response(400, f"Malformed messages or tools: {exc!r}")
    if streaming:
        return await _stream_chat(request, d, body, head, content, usage)
    message = {"role": "assistant", "content": content, "refusal": None}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    answer = {**head, "choices": [choice]}
    if usage is not None:
        answer["usage"] = usage
    return json_response(answer, headers=pad_headers(d.header_bytes) if d.header_bytes else None)


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
            **pad_headers(d.header_bytes),
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
    for sent, piece in enumerate(PIECE_RE.findall(content)):
        if d.fault == "reset" and sent == 2:
            break
        await send(chunk({"content": piece}))
    if d.fault == "reset":
        abort(request)
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
    body, rejection = await accept(request)
    if rejection is not None:
        return rejection
    model, fmt = body.get("model"), body.get("encoding_format", "float")
    dims = body.get("dimensions", 8)
    try:
        items = _embedding_inputs(body.get("input"))
        texts = [x for x in items if isinstance(x, str)]
        d = parse_directives(texts[-1] if texts else "")
    except ValueError as exc:
        return error_response(400, str(exc))
    if not isinstance(model, str) or fmt not in ("float", "base64"):
        return error_response(
            400, "'model' is required and 'encoding_format' must be float or base64."
        )
    if not isinstance(dims, int) or not 1 <= dims <= 4096:
        return error_response(400, "'dimensions' must be an integer from 1 to 4096.")
    if (preempted := await apply_faults(request, d, streaming=False)) is not None:
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
        answer["usage"] = hostile_usage({"prompt_tokens": tokens, "total_tokens": tokens}, d.usage)
    return json_response(answer)


def _model_card(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": "sluice-fake"}


async def _models(request: web.Request) -> web.StreamResponse:
    """List the fixed models, or retrieve one: any listed model or any `fake-*` name exists."""
    _, rejection = await accept(request)
    if rejection is not None:
        return rejection
    model_id = request.match_info.get("model")
    if model_id is None:
        return json_response({"object": "list", "data": [_model_card(m) for m in MODELS]})
    if model_id in MODELS or model_id.startswith("fake-"):
        return json_response(_model_card(model_id))
    return error_response(404, f"The model '{model_id}' does not exist.", code="model_not_found")


async def _reset(request: web.Request) -> web.StreamResponse:
    request.app[STATE].reset()
    return json_response({"ok": True})


async def _recorded(request: web.Request) -> web.StreamResponse:
    """Expose recorded requests to a test driving a fake that runs in another process."""
    rows = [
        {"method": r.method, "path": r.path, "headers": r.headers, "body": r.body}
        for r in request.app[STATE].requests
    ]
    return json_response(rows)


def create_fake_app() -> web.Application:
    """Build the aiohttp application; its state lives on the app, so apps never share it."""
    app = web.Application(client_max_size=64 * 1024 * 1024)  # benchmarks send large prompts
    app[STATE] = State()
    app.router.add_post("/v1/chat/completions", _chat_completions)
    app.router.add_post("/v1/embeddings", _embeddings)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/v1/models/{model}", _models)
    fake_responses.add_routes(app)
    app.router.add_post("/_fake/reset", _reset)
    app.router.add_get("/_fake/requests", _recorded)
    return app


class FakeUpstream:
    """A running fake on an event loop; build it with `start_fake_upstream`."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, scheme: str = "http") -> None:
        self._runner = runner
        self._state = runner.app[STATE]
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
