"""Fixtures every package's tests may use: a real Redis server on a free loopback port."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_devstack.processes import free_port
from rag_devstack.redis_server import RedisServer, start_redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    folder = Path(tempfile.mkdtemp(prefix="rag-redis-"))
    server = start_redis(free_port(), folder / "data", folder / "redis.log")
    yield server
    server.stop()
