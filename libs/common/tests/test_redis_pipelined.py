"""The pipelined hot-path client against a real redis-server: replies matched to their callers under
concurrency, scripts, error replies, restarts, timeouts, a password and a database from the URL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rag_common.redis_pipelined import PipelinedRedis
from rag_devstack.processes import free_port
from rag_devstack.redis_server import RedisServer, start_redis

SCRIPT = "redis.call('SET', KEYS[1], ARGV[1]); return {tonumber(ARGV[1]) * 2, redis.call('GET', KEYS[1])}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    started = start_redis(free_port(), tmp_path / "data", tmp_path / "redis.log")
    yield started
    started.stop()


async def test_concurrent_commands_each_get_their_own_reply(server: RedisServer) -> None:
    client = PipelinedRedis(server.url, 2.0)
    try:
        await asyncio.gather(*(client.execute_command("SET", f"key{i}", i) for i in range(500)))
        values = await asyncio.gather(*(client.execute_command("GET", f"key{i}") for i in range(500)))
    finally:
        await client.aclose()
    assert values == [str(i).encode() for i in range(500)]


async def test_a_script_runs_again_after_redis_forgot_it(server: RedisServer) -> None:
    client = PipelinedRedis(server.url, 2.0)
    script = client.register_script(SCRIPT)
    try:
        first = await script(keys=["s"], args=[21])
        await client.execute_command("SCRIPT", "FLUSH")
        second = await script(keys=["s"], args=[4])
    finally:
        await client.aclose()
    assert first == [42, b"21"]
    assert second == [8, b"4"], "NOSCRIPT made the client send the script whole"


async def test_an_error_reply_is_raised_and_the_connection_serves_on(server: RedisServer) -> None:
    client = PipelinedRedis(server.url, 2.0)
    try:
        await client.execute_command("SET", "text", "not a number")
        with pytest.raises(ResponseError, match="not an integer"):
            await client.execute_command("INCR", "text")
        assert await client.execute_command("PING") == b"PONG"
    finally:
        await client.aclose()


async def test_a_cancelled_caller_leaves_later_replies_matched(server: RedisServer) -> None:
    client = PipelinedRedis(server.url, 2.0)
    try:
        await client.execute_command("SET", "a", "1")
        abandoned = asyncio.ensure_future(client.execute_command("GET", "a"))
        await asyncio.sleep(0)
        abandoned.cancel()
        await client.execute_command("SET", "b", "2")
        assert await client.execute_command("GET", "b") == b"2"
    finally:
        await client.aclose()


async def test_commands_work_again_once_redis_restarted(server: RedisServer, tmp_path: Path) -> None:
    client = PipelinedRedis(server.url, 2.0)
    try:
        await client.execute_command("SET", "kept", "yes")
        server.stop()
        with pytest.raises(RedisConnectionError):
            await client.execute_command("GET", "kept")
        restarted = start_redis(server.port, tmp_path / "data", tmp_path / "redis.log")
        try:
            # The append-only file kept the key; the client dials a new connection by itself.
            assert await client.execute_command("GET", "kept") == b"yes"
            restarted.stop()
            restarted = start_redis(server.port, tmp_path / "data", tmp_path / "redis.log")
            # The connection Redis closed on restart is found closed and the command sent again once.
            assert await client.execute_command("GET", "kept") == b"yes"
        finally:
            restarted.stop()
    finally:
        await client.aclose()


async def test_redis_down_fails_at_once() -> None:
    client = PipelinedRedis(f"redis://127.0.0.1:{free_port()}/0", 2.0)
    started = time.perf_counter()
    with pytest.raises(RedisConnectionError, match="Error connecting to Redis"):
        await client.execute_command("PING")
    assert time.perf_counter() - started < 1.0


async def test_a_reply_slower_than_the_timeout_fails_and_the_next_command_works(server: RedisServer) -> None:
    client = PipelinedRedis(server.url, 0.2)
    other = redis.Redis.from_url(server.url)
    try:
        await client.execute_command("PING")
        other.execute_command("CLIENT", "PAUSE", 800, "ALL")
        started = time.perf_counter()
        with pytest.raises(RedisTimeoutError, match=r"within 0\.2 s"):
            await client.execute_command("GET", "x")
        assert time.perf_counter() - started < 0.6
        await asyncio.sleep(0.8)
        assert await client.execute_command("PING") == b"PONG"
    finally:
        other.close()
        await client.aclose()


async def test_password_and_database_come_from_the_url(server: RedisServer) -> None:
    admin = redis.Redis.from_url(server.url)
    admin.config_set("requirepass", "s3cret")
    admin = redis.Redis.from_url(f"redis://:s3cret@127.0.0.1:{server.port}/0")
    client = PipelinedRedis(f"redis://:s3cret@127.0.0.1:{server.port}/3", 2.0)
    try:
        await client.execute_command("SET", "in-db-3", "x")
        assert redis.Redis.from_url(f"redis://:s3cret@127.0.0.1:{server.port}/3").get("in-db-3") == b"x"
        assert admin.get("in-db-3") is None
        wrong = PipelinedRedis(f"redis://:wrong@127.0.0.1:{server.port}/0", 2.0)
        with pytest.raises(ResponseError):
            await wrong.execute_command("PING")
    finally:
        admin.close()
        await client.aclose()
