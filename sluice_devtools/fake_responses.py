"""The fake upstream's Responses API, legacy Completions and Moderations.

Directives are those of sluice_devtools.fake_upstream, read from the last user input
(Responses), the last prompt (Completions) or the last input (Moderations), plus:

    #call=NAME       Responses: answer with one function_call item to NAME (arguments
                     '{"ok":true}') instead of text
    #flag            Moderations: flag the input (category "harassment")

Responses are stored by id (unless `store` is false) with their input items, for GET, DELETE,
input_items and cancel. Streams follow OpenAI's event sequence: response.created,
response.in_progress, response.output_item.added, response.content_part.added,
response.output_text.delta..., response.output_text.done, response.content_part.done,
response.output_item.done, response.completed (with usage). Responses streams end there (no
[DONE]); completions streams end with [DONE], like chat.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import msgspec
from aiohttp import web

from gateway.tokens.counting import count_embedding_input, count_text
from gateway.tokens.responses_input import count_responses_input
from sluice_devtools.fake_wire import (
    PIECE_RE,
    STATE,
    Directives,
    abort,
    accept,
    apply_faults,
    content_for,
    error_response,
    hostile_usage,
    json_response,
    parse_directives,
    text_of,
)

__all__ = ["add_routes"]

_CALL_RE = re.compile(r"(?<!\S)#call=(\w+)")
_CALL_ARGUMENTS = '{"ok":true}'
_RENAMES = {"prompt_tokens": "input_tokens", "completion_tokens": "output_tokens"}
_CATEGORIES = ("harassment", "hate", "self-harm", "sexual", "violence")


def _input_text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    for item in reversed(raw if isinstance(raw, list) else []):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, list):
                texts = [p.get("text") for p in content if isinstance(p, dict)]
                return "\n".join(t for t in texts if isinstance(t, str))
            return text_of(content)
    return ""


def _responses_usage(body: dict[str, Any], model: str, output: int, d: Directives) -> Any:
    tokens = count_responses_input(
        model, body.get("instructions"), body.get("input"), body.get("tools")
    )
    usage: dict[str, Any] = {
        "input_tokens": tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": tokens + output,
    }
    # Hostile counts use chat's names in the directive; here they land on Responses' fields.
    chat_shaped = hostile_usage({}, d.usage)
    for name, value in chat_shaped.items():
        if name == "prompt_tokens_details":
            usage["input_tokens_details"] = {**usage["input_tokens_details"], **value}
        elif name == "completion_tokens_details":
            usage["output_tokens_details"] = {**usage["output_tokens_details"], **value}
        else:
            usage[_RENAMES.get(name, name)] = value
    return usage


def _output_item(seq: int, text: str, call: str | None) -> dict[str, Any]:
    if call is not None:
        return {"type": "function_call", "id": f"fc_fake{seq:08d}", "call_id": f"call_{seq:08d}",
                "name": call, "arguments": _CALL_ARGUMENTS, "status": "completed"}  # fmt: skip
    part = {"type": "output_text", "text": text, "annotations": []}
    return {"type": "message", "id": f"msg_fake{seq:08d}", "status": "completed",
            "role": "assistant", "content": [part]}  # fmt: skip


def _response_object(body: dict[str, Any], rid: str, model: str) -> dict[str, Any]:
    return {
        "id": rid, "object": "response", "created_at": int(time.time()), "status": "in_progress",
        "model": model, "output": [], "usage": None, "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"), "metadata": body.get("metadata") or {},
        "parallel_tool_calls": True, "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0), "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [], "max_output_tokens": body.get("max_output_tokens"),
        "previous_response_id": body.get("previous_response_id"),
        "store": body.get("store", True), "text": {"format": {"type": "text"}},
        "truncation": "disabled", "reasoning": {"effort": None, "summary": None},
    }  # fmt: skip


async def _responses(request: web.Request) -> web.StreamResponse:
    body, rejection = await accept(request)
    if rejection is not None:
        return rejection
    model, raw_input = body.get("model"), body.get("input")
    if not isinstance(model, str) or not isinstance(raw_input, str | list):
        return error_response(400, "'model' (string) and 'input' (string or array) are required.")
    user_text = _input_text(raw_input)
    try:
        d = parse_directives(user_text)
    except ValueError as exc:
        return error_response(400, str(exc))
    streaming = body.get("stream") is True
    if (preempted := await apply_faults(request, d, streaming=streaming)) is not None:
        return preempted
    call = match.group(1) if (match := _CALL_RE.search(user_text)) else None
    text = "" if call is not None else content_for(d, body, user_text)
    state = request.app[STATE]
    state.seq += 1
    rid = f"resp_fake{state.seq:08d}"
    response = _response_object(body, rid, model)
    item = _output_item(state.seq, text, call)
    output = count_text(model, call + _CALL_ARGUMENTS if call is not None else text)
    try:
        usage = None if d.fault == "nousage" else _responses_usage(body, model, output, d)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return error_response(400, f"Malformed input or tools: {exc!r}")
    final = {**response, "status": "completed", "output": [item], "usage": usage}
    if body.get("store", True) is not False:
        items = raw_input
        if isinstance(raw_input, str):
            part = {"type": "input_text", "text": raw_input}
            items = [{"type": "message", "role": "user", "content": [part]}]
        state.responses[rid] = {"response": final, "input_items": items}
    if streaming:
        return await _stream_response(request, d, response, final, item)
    return json_response(final)


async def _stream_response(
    request: web.Request,
    d: Directives,
    response: dict[str, Any],
    final: dict[str, Any],
    item: dict[str, Any],
) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    sequence = 0

    async def send(kind: str, **fields: Any) -> None:
        nonlocal sequence
        if d.delay_s:
            await asyncio.sleep(d.delay_s)
        event = {"type": kind, "sequence_number": sequence, **fields}
        sequence += 1
        await resp.write(f"event: {kind}\ndata: ".encode() + msgspec.json.encode(event) + b"\n\n")

    await send("response.created", response=response)
    await send("response.in_progress", response=response)
    where = {"item_id": item["id"], "output_index": 0}
    if item["type"] == "function_call":
        await send("response.output_item.added", output_index=0,
                   item={**item, "arguments": "", "status": "in_progress"})  # fmt: skip
        await send("response.function_call_arguments.delta", **where, delta=item["arguments"])
        await send("response.function_call_arguments.done", **where, arguments=item["arguments"])
    else:
        text = item["content"][0]["text"]
        empty = {"type": "output_text", "text": "", "annotations": []}
        await send("response.output_item.added", output_index=0,
                   item={**item, "content": [], "status": "in_progress"})  # fmt: skip
        await send("response.content_part.added", **where, content_index=0, part=empty)
        if d.fault == "malformed":
            await resp.write(b"event: response.output_text.delta\ndata: {not json\n\n")
            await resp.write_eof()
            return resp
        for sent, piece in enumerate(PIECE_RE.findall(text)):
            if d.fault == "reset" and sent == 2:
                abort(request)
                return resp
            await send("response.output_text.delta", **where, content_index=0, delta=piece,
                       logprobs=[])  # fmt: skip
        await send("response.output_text.done", **where, content_index=0, text=text, logprobs=[])
        await send("response.content_part.done", **where, content_index=0, part=item["content"][0])
    await send("response.output_item.done", output_index=0, item=item)
    await send("response.completed", response=final)
    await resp.write_eof()
    return resp


def _stored(request: web.Request) -> dict[str, Any] | None:
    return request.app[STATE].responses.get(request.match_info["response_id"])


def _not_found(request: web.Request) -> web.Response:
    rid = request.match_info["response_id"]
    return error_response(404, f"Response with id '{rid}' not found.")


async def _retrieve(request: web.Request) -> web.StreamResponse:
    _, rejection = await accept(request)
    if rejection is not None:
        return rejection
    stored = _stored(request)
    return _not_found(request) if stored is None else json_response(stored["response"])


async def _delete(request: web.Request) -> web.StreamResponse:
    _, rejection = await accept(request)
    if rejection is not None:
        return rejection
    rid = request.match_info["response_id"]
    if request.app[STATE].responses.pop(rid, None) is None:
        return _not_found(request)
    return json_response({"id": rid, "object": "response.deleted", "deleted": True})


async def _input_items(request: web.Request) -> web.StreamResponse:
    _, rejection = await accept(request)
    if rejection is not None:
        return rejection
    stored = _stored(request)
    if stored is None:
        return _not_found(request)
    data = [
        {"id": f"msg_in{index:04d}", "status": "completed", **item}
        for index, item in enumerate(stored["input_items"])
    ]
    if request.query.get("order", "desc") == "desc":
        data.reverse()
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return json_response(
        {"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": False}
    )


async def _cancel(request: web.Request) -> web.StreamResponse:
    _, rejection = await accept(request)
    if rejection is not None:
        return rejection
    stored = _stored(request)
    if stored is None:
        return _not_found(request)
    stored["response"] = {**stored["response"], "status": "cancelled"}
    return json_response(stored["response"])


def _prompts(raw: Any) -> list[str | list[int]]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw:
        if all(isinstance(x, str) for x in raw):
            return list(raw)
        if all(isinstance(x, int) for x in raw):
            return [list(raw)]
        if all(isinstance(x, list) for x in raw):
            return list(raw)
    raise ValueError("'prompt' must be a string, an array of strings, or token arrays.")


async def _completions(request: web.Request) -> web.StreamResponse:
    body, rejection = await accept(request)
    if rejection is not None:
        return rejection
    model = body.get("model")
    try:
        prompts = _prompts(body.get("prompt"))
        texts = [p for p in prompts if isinstance(p, str)]
        d = parse_directives(texts[-1] if texts else "")
    except ValueError as exc:
        return error_response(400, str(exc))
    if not isinstance(model, str):
        return error_response(400, "'model' (string) is required.")
    streaming = body.get("stream") is True
    if (preempted := await apply_faults(request, d, streaming=streaming)) is not None:
        return preempted
    text = content_for(d, body, texts[-1] if texts else "")
    state = request.app[STATE]
    state.seq += 1
    head = {"id": f"cmpl-fake{state.seq:08d}", "object": "text_completion",
            "created": int(time.time()), "model": model}  # fmt: skip
    prompt_tokens = count_embedding_input(model, body["prompt"])
    completion = count_text(model, text) * len(prompts)
    usage = None
    if d.fault != "nousage":
        usage = hostile_usage({"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                               "total_tokens": prompt_tokens + completion}, d.usage)  # fmt: skip
    if not streaming:
        choices = [{"text": text, "index": i, "logprobs": None, "finish_reason": "stop"}
                   for i in range(len(prompts))]  # fmt: skip
        return json_response({**head, "choices": choices, **({"usage": usage} if usage else {})})
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)

    async def send(payload: dict[str, Any] | None) -> None:
        if d.delay_s:
            await asyncio.sleep(d.delay_s)
        data = b"[DONE]" if payload is None else msgspec.json.encode(payload)
        await resp.write(b"data: " + data + b"\n\n")

    for index in range(len(prompts)):
        for sent, piece in enumerate(PIECE_RE.findall(text)):
            if d.fault == "reset" and sent == 2:
                abort(request)
                return resp
            choice = {"text": piece, "index": index, "logprobs": None, "finish_reason": None}
            await send({**head, "choices": [choice]})
        end = {"text": "", "index": index, "logprobs": None, "finish_reason": "stop"}
        await send({**head, "choices": [end]})
    if include_usage and usage is not None:
        await send({**head, "choices": [], "usage": usage})
    await send(None)
    await resp.write_eof()
    return resp


async def _moderations(request: web.Request) -> web.StreamResponse:
    body, rejection = await accept(request)
    if rejection is not None:
        return rejection
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else None
    if not inputs:
        return error_response(400, "'input' (string or array) is required.")
    results = []
    for item in inputs:
        text = item if isinstance(item, str) else text_of([item])
        flagged = "#flag" in text
        categories = {name: flagged and name == "harassment" for name in _CATEGORIES}
        scores = {name: 0.9 if value else 0.001 for name, value in categories.items()}
        results.append({"flagged": flagged, "categories": categories, "category_scores": scores})
    request.app[STATE].seq += 1
    model = body.get("model") or "omni-moderation-latest"
    seq = request.app[STATE].seq
    return json_response({"id": f"modr-fake{seq:08d}", "model": model, "results": results})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/responses", _responses)
    app.router.add_get("/v1/responses/{response_id}", _retrieve)
    app.router.add_delete("/v1/responses/{response_id}", _delete)
    app.router.add_get("/v1/responses/{response_id}/input_items", _input_items)
    app.router.add_post("/v1/responses/{response_id}/cancel", _cancel)
    app.router.add_post("/v1/completions", _completions)
    app.router.add_post("/v1/moderations", _moderations)
