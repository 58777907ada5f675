"""The one way every service connects to Redis: a bounded, blocking pool with one timeout for
connecting, waiting for a pooled connection and every command, so a slow Redis is an error in
`timeout_s`, never a hang.

A pooled connection that Redis closed (a restart, an idle timeout) is dialled again once before the
command fails, so after Redis comes back no request pays for each stale connection in the pool.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


def connect(url: str, timeout_s: float, *, max_connections: int = 100) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
    )
    return Redis(connection_pool=pool)
