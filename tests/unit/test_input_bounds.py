"""The input bounds at their edges: depth 64 passes and 65 does not, INTEGER's range, and the
control characters text may and may not hold."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest
from gateway.input_bounds import (
    INT_MAX,
    INT_MIN,
    check_admin_value,
    check_identifier,
    decode_json,
)


@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
def test_depth_64_passes_and_65_is_refused(opening: bytes) -> None:
    closing = b"]" if opening == b"[" else b"}"
    inner = b"1" if opening == b'{"a":' else b""
    assert decode_json(opening * 64 + inner + closing * 64) is not None
    with pytest.raises(InvalidRequest, match="nested more than 64 levels"):
        decode_json(opening * 65 + inner + closing * 65)


def test_a_scalar_full_of_brackets_is_not_deep() -> None:
    assert decode_json(b'"' + b"[" * 100 + b'"') == "[" * 100


def test_many_shallow_containers_are_not_deep() -> None:
    body = b'{"messages": [' + b",".join([b'{"role": "user", "content": "x"}'] * 500) + b"]}"
    assert len(decode_json(body)["messages"]) == 500


def test_integers_must_fit_integer() -> None:
    check_admin_value({"a": [INT_MIN, INT_MAX, True, 1.5e300]})
    for value, param in (({"a": INT_MAX + 1}, "a"), ({"b": [{"c": INT_MIN - 1}]}, "b[0].c")):
        with pytest.raises(InvalidRequest) as info:
            check_admin_value(value)
        assert info.value.param == param


def test_text_may_hold_tab_newline_and_cr_but_no_other_control() -> None:
    check_admin_value({"content": "one\n\ttwo\r\n"})
    for char in ("\x00", "\x01", "\x1b", "\x7f"):
        with pytest.raises(InvalidRequest) as info:
            check_admin_value({"messages": [{"content": f"a{char}b"}]})
        assert info.value.param == "messages[0].content"
    with pytest.raises(InvalidRequest, match="contains a newline"):
        check_identifier("user", "a\nb")
