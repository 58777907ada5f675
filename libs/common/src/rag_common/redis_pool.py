"""The one way every service connects to Redis: a bounded, blocking pool with one timeout for
connecting, waiting for a pooled connection and every command, so a slow Redis is an error in
`timeout_s`, never a hang."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis


def connect(url: str, timeout_s: float, *, max_connections: int = 100) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )
    return Redis(connection_pool=pool)
