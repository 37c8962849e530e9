"""Reading Responses API streams and estimating Responses and legacy completion requests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from gateway.budgets.estimate import estimate_completions, estimate_responses
from gateway.budgets.pricing import ModelPrice
from gateway.errors import InvalidRequest
from gateway.proxy.responses_api import RESPONSES, ResponsesStream
from gateway.proxy.sse import MalformedStream, StreamState
from gateway.proxy.stages import ResolvedPrompt
from gateway.tokens.counting import count_chat_prompt, count_embedding_input
from gateway.tokens.responses_input import count_responses_input

PRICE = ModelPrice(
    Decimal("0.15"), Decimal("0.60"), cached_input=Decimal("0.075"), max_output_tokens=16384
)


def _event(kind: str, **fields: Any) -> bytes:
    data = msgspec.json.encode({"type": kind, **fields})
    return f"event: {kind}\ndata: ".encode() + data + b"\n\n"


def _completed(usage: dict[str, Any]) -> bytes:
    return _event("response.completed", response={"id": "resp_1", "model": "m", "usage": usage})


def test_a_stream_is_read_event_by_event_and_ends_with_its_usage() -> None:
    state = ResponsesStream()
    created = _event("response.created", response={"id": "resp_1", "model": "m", "usage": None})
    assert state.feed(created) == created
    for piece in ("Hel", "lo"):
        state.feed(_event("response.output_text.delta", delta=piece))
    assert not state.done
    usage = {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11,
             "input_tokens_details": {"cached_tokens": 4}}  # fmt: skip
    state.feed(_completed(usage))
    assert state.done and state.text == "Hello" and state.response_id == "resp_1"
    assert state.usage is not None
    assert (state.usage.prompt_tokens, state.usage.completion_tokens) == (9, 2)
    assert state.usage.cached_tokens == 4
    assert state.as_logged()["usage"] == usage


def test_hostile_usage_is_untrusted_and_reasoning_is_billed_as_output() -> None:
    state = ResponsesStream()
    state.feed(_completed({"input_tokens": -5, "output_tokens": 2}))
    assert state.usage is None and state.usage_problems == ("negative",)
    state = ResponsesStream()
    state.feed(
        _completed(
            {
                "input_tokens": 5,
                "output_tokens": 2,
                "output_tokens_details": {"reasoning_tokens": 30},
            }
        )
    )
    assert state.usage is not None and state.usage.completion_tokens == 30


def test_a_stream_cut_short_is_logged_as_an_incomplete_response() -> None:
    state = ResponsesStream()
    state.feed(_event("response.output_text.delta", delta="par"))
    call = {"type": "function_call", "id": "fc", "name": "f", "arguments": "{}"}
    state.feed(_event("response.output_item.done", item=call))
    logged = state.as_logged()
    assert logged["status"] == "incomplete"
    assert logged["output"][0] == call
    assert logged["output"][1]["content"][0]["text"] == "par"
    assert state.output_text == "parf{}"
    with pytest.raises(MalformedStream):
        state.feed(b"event: x\ndata: {not json\n\n")


def test_the_failure_event_is_a_typed_error_event() -> None:
    event = RESPONSES.stream_error("it broke")
    assert event.startswith(b"event: error\ndata: ")
    assert msgspec.json.decode(event.split(b"data: ")[1])["message"] == "it broke"


def test_a_legacy_stream_folds_into_a_text_completion() -> None:
    state = StreamState(client_wants_usage=False, legacy=True)
    state.feed(b'data: {"id":"c","model":"m","choices":[{"index":0,"text":"ab"}]}\n\n')
    state.feed(b'data: {"id":"c","choices":[{"index":0,"text":"c","finish_reason":"stop"}]}\n\n')
    assert state.as_logged()["choices"] == [{"index": 0, "text": "abc", "finish_reason": "stop"}]


def test_a_prompt_version_maps_onto_instructions_input_and_max_output_tokens() -> None:
    body: dict[str, Any] = {"model": "x", "input": "hi", "instructions": "mine", "top_p": 1}
    resolved = ResolvedPrompt(
        "s", 1, "v1", [{"role": "system", "content": "sys"}, {"role": "user", "content": "ex"}],
        {}, model="gpt-4o", params={"max_completion_tokens": 5, "top_p": 0.5},
    )  # fmt: skip
    RESPONSES.apply_prompt(body, resolved)
    assert body == {
        "model": "gpt-4o",
        "instructions": "sys\n\nmine",
        "input": [{"role": "user", "content": "ex"}, {"role": "user", "content": "hi"}],
        "max_output_tokens": 5,
        "top_p": 0.5,
    }


def test_responses_input_counts_as_the_chat_it_amounts_to() -> None:
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "hello there"}]},
        {"type": "function_call", "name": "f", "arguments": '{"a":1}', "call_id": "c"},
        {"type": "function_call_output", "call_id": "c", "output": "42"},
    ]
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    chat = [
        {"role": "system", "content": "be kind"},
        {"role": "user", "content": [{"type": "text", "text": "hello there"}]},
        {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": '{"a":1}'}}]},
        {"role": "tool", "content": "42"},
    ]
    expected = count_chat_prompt("gpt-4o", chat, [{"type": "function", "function": tools[0]}])
    assert count_responses_input("gpt-4o", "be kind", items, tools) == expected


def test_a_responses_estimate_sets_the_cap_and_refuses_malformed_input() -> None:
    body: dict[str, Any] = {"input": "hello"}
    estimate = estimate_responses("gpt-4o-mini", body, PRICE, default_cap=100)
    assert body["max_output_tokens"] == estimate.output_tokens == 100
    assert estimate.prompt_tokens == count_responses_input("gpt-4o-mini", None, "hello", None)
    with pytest.raises(InvalidRequest):
        estimate_responses("gpt-4o-mini", {"input": [5]}, PRICE, default_cap=100)


def test_a_completions_estimate_covers_every_candidate_of_every_prompt() -> None:
    body = {"prompt": ["a b", "c"], "n": 2, "best_of": 3}
    estimate = estimate_completions("gpt-4o-mini", body, PRICE)
    assert estimate.prompt_tokens == count_embedding_input("gpt-4o-mini", ["a b", "c"])
    assert estimate.output_tokens == 16 * 3 * 2
    assert (
        estimate_completions("m", {"prompt": [1, 2, 3], "max_tokens": 5}, PRICE).output_tokens == 5
    )
