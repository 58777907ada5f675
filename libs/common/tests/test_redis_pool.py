"""After Redis restarts, the pool's stale connections are dialled again instead of failing requests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rag_common.redis_pool import connect
from rag_devstack.processes import free_port
from rag_devstack.redis_server import start_redis


async def test_every_pooled_connection_works_again_after_a_redis_restart(tmp_path: Path) -> None:
    port = free_port()
    server = start_redis(port, tmp_path / "data", tmp_path / "redis.log")
    client = connect(server.url, 1.0, max_connections=8)
    try:
        await asyncio.gather(*(client.set(f"k{i}", i) for i in range(8)))  # fill the pool
        server.stop()
        server = start_redis(port, tmp_path / "data", tmp_path / "redis.log")
        values = await asyncio.gather(*(client.get(f"k{i}") for i in range(8)))
    finally:
        await client.aclose()
        server.stop()
    assert values == [str(i).encode() for i in range(8)], "every stale connection was re-dialled once"
