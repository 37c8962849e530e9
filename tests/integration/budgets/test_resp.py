"""The ledger's pipelined Redis connection against a real Redis: order, errors, reconnection."""

from __future__ import annotations

import asyncio

import pytest

from gateway.budgets.resp import ReplyError, RespConnection
from tests.e2e.budgets_support import ThrowawayRedis


async def test_concurrent_callers_each_get_their_own_reply(redis_url: str) -> None:
    connection = RespConnection(redis_url)
    try:
        await connection.call("DEL", "resp:counter")
        replies = await asyncio.gather(
            *(connection.call("INCRBY", "resp:counter", i) for i in range(1, 201))
        )
        # Written in call order on one socket, so each caller sees the running total so far.
        assert replies == [i * (i + 1) // 2 for i in range(1, 201)]
        values = await asyncio.gather(*(connection.call("ECHO", f"v{i}") for i in range(100)))
        assert values == [f"v{i}".encode() for i in range(100)]
    finally:
        await connection.close()


async def test_an_error_reply_fails_one_call_and_keeps_the_connection(redis_url: str) -> None:
    connection = RespConnection(redis_url)
    try:
        with pytest.raises(ReplyError, match="NOSCRIPT"):
            await connection.call("EVALSHA", "0" * 40, 0)
        assert await connection.call("PING") == b"PONG"
        assert await connection.call("SELECT", 11) == b"OK"
    finally:
        await connection.close()


async def test_a_caller_that_gave_up_does_not_shift_the_replies(redis_url: str) -> None:
    connection = RespConnection(redis_url)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await connection.call("BLPOP", "resp:never", "0.3")
        assert await connection.call("ECHO", "next") == b"next"
    finally:
        await connection.close()


async def test_the_connection_comes_back_after_redis_does() -> None:
    server = ThrowawayRedis().start()
    connection = RespConnection(server.url)
    try:
        assert await connection.call("SET", "k", "v") == b"OK"
        server.kill()
        with pytest.raises(ConnectionError):
            await connection.call("GET", "k")
        server.start()
        assert await connection.call("GET", "k") is None  # a fresh, empty Redis
    finally:
        await connection.close()
        server.kill()


async def test_a_refused_login_is_an_error_not_a_hang(redis_url: str) -> None:
    connection = RespConnection(redis_url.replace("redis://", "redis://:wrong@"))
    try:
        with pytest.raises(ReplyError, match="AUTH"):
            await connection.call("PING")
    finally:
        await connection.close()


async def test_a_queued_command_runs_before_any_command_sent_after_it(redis_url: str) -> None:
    connection = RespConnection(redis_url)
    try:
        await connection.call("DEL", "resp:queued")
        queued = connection.send_soon("INCRBY", "resp:queued", 5)
        assert await connection.call("GET", "resp:queued") == b"5"
        assert await queued == 5
    finally:
        await connection.close()


async def test_a_queued_command_alone_is_still_written(redis_url: str) -> None:
    connection = RespConnection(redis_url)
    try:
        await connection.call("PING")
        # Nothing is sent after it: it goes out by itself once its wait for company is over.
        assert await asyncio.wait_for(connection.send_soon("ECHO", "alone"), 5) == b"alone"
    finally:
        await connection.close()


async def test_commands_of_one_turn_share_a_write_and_keep_their_order(redis_url: str) -> None:
    connection = RespConnection(redis_url)
    try:
        await connection.call("DEL", "resp:turn")
        sent = []
        for i in range(50):
            if i == 10:
                sent.append(connection.send_soon("RPUSH", "resp:turn", "soon"))
            sent.append(connection.send_now("RPUSH", "resp:turn", i))
        await asyncio.gather(*sent)
        items = await connection.call("LRANGE", "resp:turn", 0, -1)
        assert items == [*(str(i).encode() for i in range(10)), b"soon"] + [
            str(i).encode() for i in range(10, 50)
        ]
    finally:
        await connection.close()


async def test_a_queued_command_fails_when_the_connection_is_lost_before_it_is_written() -> None:
    server = ThrowawayRedis().start()
    connection = RespConnection(server.url)
    try:
        await connection.call("PING")
        queued = connection.send_soon("SET", "k", "v")
        server.kill()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(queued, 5)
    finally:
        await connection.close()
        server.kill()
