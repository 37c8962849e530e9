"""The request path: authenticate, resolve, reserve, forward, relay, settle, log.

`ProxyService` knows nothing of HTTP frameworks: it takes the raw headers and body and returns
a `ProxyResult` (bytes, or a stream of bytes) that the route turns into a response. Errors are
`SluiceError`s carrying the request id; the failing call is logged all the same.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import msgspec

from gateway.errors import InvalidRequest, SluiceError, UpstreamError
from gateway.ids import new_id
from gateway.keys.service import KeyInfo, KeyService
from gateway.metrics import GatewayMetrics
from gateway.proxy.context import CallContext, RawHeaders, apply_body_field, parse_call_headers
from gateway.proxy.generation import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    MODERATIONS,
    Endpoint,
    Generation,
    StreamReader,
    read_fields,
)
from gateway.proxy.payloads import (
    EmbeddingFields,
    ModerationFields,
    convert_body,
    decode_object,
    format_usd,
    prompt_headers,
    record_prompt,
    settlement_into,
    strip_forbidden,
    upstream_error_body,
    usage_into,
)
from gateway.proxy.response_objects import ResponseOwners
from gateway.proxy.responses_api import RESPONSES
from gateway.proxy.sse import MalformedStream, split_events
from gateway.proxy.stages import (
    BudgetStage,
    PromptStage,
    Reservation,
    ResolvedPrompt,
    ResponseObserver,
    Settlement,
    Usage,
)
from gateway.requestlog.buffer import RequestLogBuffer
from gateway.requestlog.entry import LogEntry
from gateway.upstream.provider import Provider, UpstreamStream
from gateway.upstream.routing import ModelRouter, Route

__all__ = ["ProxyResult", "ProxyService", "Stages"]

log = logging.getLogger("sluice.proxy")
MODELS_TTL = 60.0  # seconds an upstream's model list is reused
DEFAULT_MODERATION_MODEL = "omni-moderation-latest"  # what OpenAI uses when none is named


@dataclass(frozen=True, slots=True)
class Stages:
    """The proxy's optional stages, fixed when the proxy is built (gateway/proxy/plugin.py)."""

    prompts: PromptStage | None = None
    budgets: BudgetStage | None = None
    observers: tuple[ResponseObserver, ...] = ()


@dataclass(slots=True)
class ProxyResult:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None


class ProxyService:
    def __init__(
        self,
        *,
        keys: KeyService,
        router: ModelRouter,
        provider: Provider,
        log_buffer: RequestLogBuffer,
        metrics: GatewayMetrics,
        stages: Stages | None = None,
        response_owners: ResponseOwners | None = None,
    ) -> None:
        self.keys = keys
        self.router = router
        self.provider = provider
        self.log_buffer = log_buffer
        self.metrics = metrics
        self.stages = stages or Stages()
        self.response_owners = response_owners or ResponseOwners(None)
        """Where the responses that pass through live (gateway.proxy.response_objects)."""
        self._background: set[asyncio.Task[Any]] = set()
        self._models_cache: tuple[float, bytes] | None = None

    # -- entry points --------------------------------------------------------------------

    async def chat(self, headers: RawHeaders, raw_body: bytes) -> ProxyResult:
        """A client's chat completion, authenticated by its Authorization header."""
        return await self._generate(parse_call_headers(headers), raw_body, CHAT, None, None)

    async def responses(self, headers: RawHeaders, raw_body: bytes) -> ProxyResult:
        """A client's Responses API call (`POST /v1/responses`)."""
        return await self._generate(parse_call_headers(headers), raw_body, RESPONSES, None, None)

    async def completions(self, headers: RawHeaders, raw_body: bytes) -> ProxyResult:
        """A client's legacy completion (`POST /v1/completions`)."""
        return await self._generate(parse_call_headers(headers), raw_body, COMPLETIONS, None, None)

    async def internal_chat(
        self,
        raw_body: bytes,
        *,
        caller: KeyInfo,
        headers: RawHeaders = (),
        model_override: str | None = None,
    ) -> ProxyResult:
        """A chat completion that originates inside Sluice (a test run's case, an LLM judge's
        call): the client path (routing, budgets, logging), under `caller`'s identity instead
        of an Authorization header, and always marked as test traffic so that it never counts
        as production and is never evaluated. `model_override` wins over the version's model."""
        return await self._generate(
            parse_call_headers(headers), raw_body, CHAT, caller, model_override
        )

    async def _generate(
        self,
        call: CallContext,
        raw_body: bytes,
        kind: Generation,
        caller: KeyInfo | None,
        model_override: str | None,
    ) -> ProxyResult:
        entry: LogEntry | None = None
        try:
            call.key = caller or await self.keys.authenticate(call.authorization)
            body = decode_object(raw_body)
            fields = read_fields(body)
            apply_body_field(call, body.pop("sluice", None))
            if caller is not None:
                call.test_run = True
            strip_forbidden(body)
            logged_request = None if call.no_log_request else dict(body)
            entry = self._entry(call, kind.endpoint, logged_request)
            if call.prompt.slug is not None:
                kind.accept_prompt()
                resolved = await self._resolve_prompt(call)
                kind.apply_prompt(body, resolved)
                record_prompt(entry, resolved)
                if model_override is not None:
                    body["model"] = model_override
                fields = read_fields(body)
            if not fields.model:
                raise InvalidRequest("The 'model' field is required.", param="model")
            kind.check(body, fields)
            entry.model_requested = fields.model
            route = self.router.resolve(fields.model)
            entry.upstream = route.upstream.name
            body["model"] = route.model
            client_wants_usage = True
            if fields.stream and kind.stream_usage_option:
                client_wants_usage = bool(
                    fields.stream_options and fields.stream_options.get("include_usage")
                )
                body["stream_options"] = {**(fields.stream_options or {}), "include_usage": True}
            reservation = await self._reserve(call, route, body, kind.endpoint)
            payload = msgspec.json.encode(body)
            if fields.stream:
                return await self._open_stream(
                    call, entry, route, body, payload, kind, reservation, client_wants_usage
                )
            return await self._forward(call, entry, route, body, payload, reservation, kind)
        except SluiceError as exc:
            self._fail(call, entry, exc, kind.endpoint)
            raise

    async def embeddings(self, headers: RawHeaders, raw_body: bytes) -> ProxyResult:
        call = parse_call_headers(headers)
        entry: LogEntry | None = None
        try:
            call.key = await self.keys.authenticate(call.authorization)
            body = decode_object(raw_body)
            fields = convert_body(body, EmbeddingFields)
            apply_body_field(call, body.pop("sluice", None))
            strip_forbidden(body)
            entry = self._entry(call, "embeddings", None if call.no_log_request else dict(body))
            entry.model_requested = fields.model
            route = self.router.resolve(fields.model)
            entry.upstream = route.upstream.name
            body["model"] = route.model
            reservation = await self._reserve(call, route, body, "embeddings")
            payload = msgspec.json.encode(body)
            return await self._forward(call, entry, route, body, payload, reservation, EMBEDDINGS)
        except SluiceError as exc:
            self._fail(call, entry, exc, "embeddings")
            raise

    async def moderations(self, headers: RawHeaders, raw_body: bytes) -> ProxyResult:
        """Logged like every call; never reserved on a budget (moderations cost nothing)."""
        call = parse_call_headers(headers)
        entry: LogEntry | None = None
        try:
            call.key = await self.keys.authenticate(call.authorization)
            body = decode_object(raw_body)
            fields = convert_body(body, ModerationFields)
            if not fields.input:
                raise InvalidRequest(
                    "The 'input' field must be a string or a non-empty list.", param="input"
                )
            apply_body_field(call, body.pop("sluice", None))
            strip_forbidden(body)
            entry = self._entry(call, "moderations", None if call.no_log_request else dict(body))
            entry.model_requested = fields.model or DEFAULT_MODERATION_MODEL
            route = self.router.resolve(entry.model_requested)
            entry.upstream = route.upstream.name
            if fields.model is not None or route.model != DEFAULT_MODERATION_MODEL:
                body["model"] = route.model
            payload = msgspec.json.encode(body)
            return await self._forward(call, entry, route, body, payload, None, MODERATIONS)
        except SluiceError as exc:
            self._fail(call, entry, exc, "moderations")
            raise

    async def models(self, headers: RawHeaders) -> ProxyResult:
        call = parse_call_headers(headers)
        await self.keys.authenticate(call.authorization)
        now = time.monotonic()
        if self._models_cache is None or now - self._models_cache[0] > MODELS_TTL:
            self._models_cache = (now, await self._list_models())
        return ProxyResult(200, {"x-sluice-request-id": call.request_id}, self._models_cache[1])

    async def _list_models(self) -> bytes:
        names = dict.fromkeys(self.router.exact_models())
        for upstream in self.router.upstreams_with_globs():
            try:
                reply = await self.provider.get(upstream, "/models")
                listed = msgspec.json.decode(reply.body) if reply.status == 200 else {}
            except (SluiceError, msgspec.DecodeError):
                log.warning("could not list the models of upstream %s", upstream.name)
                continue
            for item in listed.get("data", []) if isinstance(listed, dict) else []:
                model = item.get("id") if isinstance(item, dict) else None
                if isinstance(model, str) and self.router.routes_model(model):
                    names.setdefault(model)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "sluice"} for name in names
        ]
        return msgspec.json.encode({"object": "list", "data": data})

    # -- stages --------------------------------------------------------------------------

    async def _resolve_prompt(self, call: CallContext) -> ResolvedPrompt:
        if self.stages.prompts is None:
            raise InvalidRequest(
                "This gateway has no prompt registry enabled.", param="X-Sluice-Prompt"
            )
        return await self.stages.prompts.resolve(call)

    async def _reserve(
        self, call: CallContext, route: Route, body: dict[str, Any], endpoint: str
    ) -> Reservation | None:
        if self.stages.budgets is None:
            return None
        return await self.stages.budgets.reserve(call, route, body, endpoint)

    async def _settle(
        self, reservation: Reservation | None, route: Route, usage: Usage | None
    ) -> Settlement | None:
        if self.stages.budgets is None:
            return None
        return await self.stages.budgets.settle(reservation, route, usage)

    # -- forwarding ----------------------------------------------------------------------

    async def _forward(
        self,
        call: CallContext,
        entry: LogEntry,
        route: Route,
        sent: dict[str, Any],
        payload: bytes,
        reservation: Reservation | None,
        kind: Endpoint,
    ) -> ProxyResult:
        try:
            reply = await self.provider.complete(route.upstream, kind.path, payload)
        except SluiceError:
            await self._settle(reservation, route, None)
            self.metrics.upstream_errors.labels(route.upstream.name, "transport").inc()
            raise
        usage = None
        output_text = None
        response_body: Any = None
        if reply.status == 200:
            try:
                response_body = msgspec.json.decode(reply.body)
                parsed, checked = kind.read_reply(response_body)
            except (msgspec.DecodeError, msgspec.ValidationError):
                await self._settle(reservation, route, None)
                self.metrics.upstream_errors.labels(route.upstream.name, "garbage").inc()
                raise UpstreamError(
                    f"The upstream '{route.upstream.name}' answered with a body that is not a "
                    "valid response."
                ) from None
            entry.model_served = parsed.model
            entry.upstream_response_id = parsed.id
            if checked is not None:
                usage = checked.usage
                self._count_usage_problems(route, checked.problems)
            if usage is None:  # never bill zero: count what was sent and what came back
                usage = kind.estimated_usage(route.model, sent, response_body)
            response_body, output_text = kind.summarize(response_body)
            if kind.endpoint == RESPONSES.endpoint and parsed.id is not None:
                self.response_owners.remember(parsed.id, route.upstream.name, call.key_id)
        else:
            self.metrics.upstream_errors.labels(route.upstream.name, str(reply.status)).inc()
            response_body, entry.error_code = upstream_error_body(reply.body)
        settlement = await self._settle(reservation, route, usage)
        headers = {**reply.headers, "x-sluice-request-id": call.request_id}
        usage_into(entry, usage)
        settlement_into(entry, headers, settlement, with_cost=True)
        prompt_headers(entry, headers)
        entry.status_code = reply.status
        entry.response_body = None if call.no_log_response else response_body
        self._finish(entry, call, output_text)
        return ProxyResult(reply.status, headers, reply.body)

    async def _open_stream(
        self,
        call: CallContext,
        entry: LogEntry,
        route: Route,
        sent: dict[str, Any],
        payload: bytes,
        kind: Generation,
        reservation: Reservation | None,
        client_wants_usage: bool,
    ) -> ProxyResult:
        entry.streamed = True
        try:
            upstream = await self.provider.stream(route.upstream, kind.path, payload)
        except SluiceError:
            await self._settle(reservation, route, None)
            self.metrics.upstream_errors.labels(route.upstream.name, "transport").inc()
            raise
        headers = {**upstream.headers, "x-sluice-request-id": call.request_id}
        prompt_headers(entry, headers)
        if upstream.status != 200:
            try:
                error = await upstream.read()
            except SluiceError:  # e.g. too large: the hold must not wait for its expiry
                await self._settle(reservation, route, None)
                self.metrics.upstream_errors.labels(route.upstream.name, "transport").inc()
                raise
            finally:
                upstream.close()
            await self._settle(reservation, route, None)
            self.metrics.upstream_errors.labels(route.upstream.name, str(upstream.status)).inc()
            entry.status_code = upstream.status
            entry.response_body, entry.error_code = upstream_error_body(error)
            self._finish(entry, call, None)
            return ProxyResult(upstream.status, headers, error)
        if reservation is not None and reservation.remaining_usd is not None:
            headers["x-sluice-budget-remaining-usd"] = format_usd(reservation.remaining_usd)
        state = kind.open_stream(client_wants_usage)
        relay = self._relay(call, entry, route, upstream, state, kind, sent, reservation)
        headers["cache-control"] = "no-cache"
        return ProxyResult(200, headers, stream=relay)

    async def _relay(
        self,
        call: CallContext,
        entry: LogEntry,
        route: Route,
        upstream: UpstreamStream,
        state: StreamReader,
        kind: Generation,
        sent: dict[str, Any],
        reservation: Reservation | None,
    ) -> AsyncIterator[bytes]:
        outcome = "client_disconnected"
        pending = b""
        try:
            try:
                async for chunk in upstream.chunks():
                    events, pending = split_events(pending + chunk, upstream.max_event_bytes)
                    out = [forwarded for event in events if (forwarded := state.feed(event))]
                    if out:
                        yield b"".join(out)
                if not state.done:
                    raise MalformedStream("the upstream ended the stream before its last event")
                outcome = "completed"
            except (MalformedStream, SluiceError) as exc:
                outcome = "upstream_error"
                self.metrics.upstream_errors.labels(route.upstream.name, "stream").inc()
                message = str(exc) if isinstance(exc, MalformedStream) else exc.message
                yield kind.stream_error(f"Upstream stream failed: {message}")
        finally:
            upstream.close()
            # The response may be cancelled under us (client gone): finish in a task of its own.
            self._spawn(
                self._finish_stream(call, entry, route, state, kind, sent, reservation, outcome)
            )

    async def _finish_stream(
        self,
        call: CallContext,
        entry: LogEntry,
        route: Route,
        state: StreamReader,
        kind: Generation,
        sent: dict[str, Any],
        reservation: Reservation | None,
        outcome: str,
    ) -> None:
        usage = state.usage
        self._count_usage_problems(route, state.usage_problems)
        if usage is None:
            # Never bill zero: count what was sent and what came back.
            try:
                usage = kind.counted_usage(route.model, sent, state.output_text)
            except (AttributeError, KeyError, TypeError, ValueError):
                log.exception("could not count the tokens of a stream without usage")
        if kind.endpoint == RESPONSES.endpoint and state.response_id is not None:
            self.response_owners.remember(state.response_id, route.upstream.name, call.key_id)
        entry.upstream_response_id = state.response_id
        settlement = await self._settle(reservation, route, usage)
        entry.model_served = state.model
        entry.status_code = 200
        entry.client_disconnected = outcome == "client_disconnected"
        if outcome == "upstream_error":
            entry.error_code = "upstream_error"
        if state.first_event_at is not None:
            entry.ttft_ms = (state.first_event_at - call.started) * 1000
            self.metrics.ttft.labels(kind.endpoint).observe(entry.ttft_ms / 1000)
        usage_into(entry, usage)
        settlement_into(entry, None, settlement, with_cost=False)
        entry.response_body = None if call.no_log_response else state.as_logged()
        self._finish(entry, call, state.text)

    # -- bookkeeping ---------------------------------------------------------------------

    def _count_usage_problems(self, route: Route, problems: tuple[str, ...]) -> None:
        for reason in problems:
            self.metrics.usage_rejected.labels(route.upstream.name, reason).inc()

    def _entry(self, call: CallContext, endpoint: str, request_body: Any) -> LogEntry:
        return LogEntry(
            # The row id must be ours: a caller may reuse its own request ids.
            id=call.request_id if call.request_id_generated else new_id(),
            request_id=call.request_id,
            created_at=call.created_at,
            endpoint=endpoint,
            key_id=call.key_id,
            user=call.user,
            session=call.session,
            tags=call.tags,
            is_test_run=call.test_run,
            request_body=request_body,
        )

    def _finish(self, entry: LogEntry, call: CallContext, output_text: str | None) -> None:
        entry.latency_ms = (time.perf_counter() - call.started) * 1000
        self.metrics.requests.labels(
            entry.endpoint, str(entry.status_code), self.metrics.model_label(entry.model_requested)
        ).inc()
        self.metrics.latency.labels(entry.endpoint).observe(entry.latency_ms / 1000)
        self.log_buffer.add(entry)
        for observer in self.stages.observers:
            try:
                observer.observe(entry, call, output_text)
            except Exception:
                log.exception("response observer failed")

    def _fail(
        self, call: CallContext, entry: LogEntry | None, exc: SluiceError, endpoint: str
    ) -> None:
        exc.headers.setdefault("x-sluice-request-id", call.request_id)
        if call.key is None:  # unauthenticated calls are counted, not logged
            self.metrics.requests.labels(endpoint, str(exc.status_code), "none").inc()
            return
        if entry is None:
            entry = self._entry(call, endpoint, None)
        entry.status_code = exc.status_code
        entry.error_code = exc.code
        entry.response_body = msgspec.json.decode(exc.body())
        self._finish(entry, call, None)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for streams that are still being settled and logged (shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
