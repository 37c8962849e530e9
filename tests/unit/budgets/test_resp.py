"""The ledger's Redis wire format: commands out, replies parsed however the bytes arrive."""

from __future__ import annotations

import pytest

from gateway.budgets.resp import ReplyError, Target, _Incomplete, _parse, encode_command


def test_commands_are_arrays_of_bulk_strings() -> None:
    assert encode_command(("EVALSHA", "ab", 2, b"k\r\n")) == (
        b"*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n2\r\n$3\r\nk\r\n\r\n"
    )


def test_every_reply_kind_is_read() -> None:
    data = bytearray(
        b":-42\r\n+OK\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:1\r\n*1\r\n$0\r\n\r\n-NOSCRIPT x\r\n"
    )
    replies = []
    position = 0
    while position < len(data):
        reply, position = _parse(data, position)
        replies.append(reply)
    assert replies[:5] == [-42, b"OK", b"abc", None, [1, [b""]]]
    assert isinstance(replies[5], ReplyError)
    assert str(replies[5]) == "NOSCRIPT x"


@pytest.mark.parametrize("cut", range(1, 20))
def test_a_reply_split_anywhere_waits_for_the_rest(cut: int) -> None:
    whole = b"*3\r\n:10\r\n$5\r\nhello\r\n:-3\r\n"
    if cut < len(whole):
        with pytest.raises(_Incomplete):
            _parse(bytearray(whole[:cut]), 0)
    assert _parse(bytearray(whole), 0) == ([10, b"hello", -3], len(whole))


def test_urls_as_sluice_redis_url_takes_them() -> None:
    assert Target.from_url("redis://127.0.0.1:6380/11") == Target("127.0.0.1", 6380, db=11)
    assert Target.from_url("rediss://ops:p%40ss@cache:6390/2") == Target(
        "cache", 6390, tls=True, username="ops", password="p@ss", db=2
    )
    assert Target.from_url("redis://:secret@localhost") == Target(password="secret")
    assert Target.from_url("unix:///run/redis.sock?db=3") == Target(path="/run/redis.sock", db=3)
