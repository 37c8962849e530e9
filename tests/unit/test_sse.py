"""Splitting and reading OpenAI chat streams."""

from __future__ import annotations

import pytest

from gateway.proxy.sse import MalformedStream, StreamState, split_events

CHUNK = b'data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n'
USAGE = b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}\n\n'


def test_split_events_keeps_the_unfinished_rest() -> None:
    events, rest = split_events(CHUNK % b"a" + b'data: {"id"')
    assert events == [CHUNK % b"a"]
    assert rest == b'data: {"id"'


def test_split_events_accepts_crlf() -> None:
    events, rest = split_events(b"data: [DONE]\r\n\r\n")
    assert events == [b"data: [DONE]\n\n"]
    assert rest == b""


@pytest.mark.parametrize("wants_usage", [True, False])
def test_usage_chunk_is_read_and_dropped_unless_asked(wants_usage: bool) -> None:
    state = StreamState(client_wants_usage=wants_usage)
    assert state.feed(CHUNK % b"Hel") is not None
    assert state.feed(CHUNK % b"lo") is not None
    forwarded = state.feed(USAGE)
    assert (forwarded is not None) is wants_usage
    assert state.feed(b"data: [DONE]\n\n") == b"data: [DONE]\n\n"
    assert state.text == "Hello"
    assert state.usage is not None
    assert (state.usage.prompt_tokens, state.usage.completion_tokens) == (5, 2)
    assert state.done


def test_comments_pass_and_garbage_raises() -> None:
    state = StreamState(client_wants_usage=False)
    assert state.feed(b": keep-alive\n\n") == b": keep-alive\n\n"
    with pytest.raises(MalformedStream):
        state.feed(b"data: {not json\n\n")


def test_tool_call_deltas_are_assembled() -> None:
    state = StreamState(client_wants_usage=False)
    first = (
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t1",'
        b'"function":{"name":"get_weather","arguments":"{\\"ci"}}]}}]}\n\n'
    )
    second = (
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,'
        b'"function":{"arguments":"ty\\":1}"}}]},"finish_reason":"tool_calls"}]}\n\n'
    )
    state.feed(first)
    state.feed(second)
    completion = state.as_completion()
    [call] = completion["choices"][0]["message"]["tool_calls"]
    assert call["id"] == "t1"
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":1}'}
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    assert state.tool_call_text() == 'get_weather{"city":1}'
