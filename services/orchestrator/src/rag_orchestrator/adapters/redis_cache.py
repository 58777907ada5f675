"""The orchestrator's caches in Redis. Every Redis failure is a miss (or a skipped write): the cache
can slow nothing down and fail no request, it is bypassed while Redis is away."""

from __future__ import annotations

import logging
from array import array
from collections.abc import Sequence
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from rag_common.errors import UpstreamUnavailable
from rag_common.redis_pool import connect as connect

logger = logging.getLogger(__name__)

PREFIX = "rag:cache:"
ENTRY_SEPARATOR = b"\x00"


class RedisCache:
    def __init__(self, redis: Redis, *, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s

    async def collection_version(self, collection: str) -> int | None:
        """None when Redis is unreachable: callers must then skip every cache of this collection."""
        try:
            raw = await self._redis.get(f"{PREFIX}version:{collection}")
        except RedisError as exc:
            logger.warning("cache bypassed, Redis unreachable: %s", exc)
            return None
        return int(raw or 0)

    async def bump(self, collection: str) -> None:
        """A new version makes every answer and search cached for the collection unreachable.

        This one cannot degrade: a change the cache does not hear of could be contradicted by cached
        answers once Redis is back, so the change is refused instead.
        """
        try:
            await self._redis.incr(f"{PREFIX}version:{collection}")
        except RedisError as exc:
            raise UpstreamUnavailable(
                "redis", "Redis is unreachable, so the answer cache cannot be invalidated; try again shortly."
            ) from exc

    async def get(self, key: str) -> bytes | None:
        try:
            raw: bytes | None = await self._redis.get(PREFIX + key)
        except RedisError as exc:
            logger.warning("cache bypassed, Redis unreachable: %s", exc)
            return None
        return raw

    async def set(self, key: str, value: bytes) -> None:
        try:
            await self._redis.set(PREFIX + key, value, ex=self._ttl_s)
        except RedisError as exc:
            logger.warning("cache write skipped, Redis unreachable: %s", exc)

    async def get_vectors(self, keys: Sequence[str]) -> list[list[float] | None]:
        try:
            raws = await self._redis.mget([PREFIX + key for key in keys])
        except RedisError as exc:
            logger.warning("cache bypassed, Redis unreachable: %s", exc)
            return [None] * len(keys)
        return [array("f", raw).tolist() if raw else None for raw in raws]

    async def set_vectors(self, items: dict[str, list[float]]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, vector in items.items():
                    pipe.set(PREFIX + key, array("f", vector).tobytes(), ex=self._ttl_s)
                await pipe.execute()
        except RedisError as exc:
            logger.warning("cache write skipped, Redis unreachable: %s", exc)

    async def semantic_entries(self, scope: str) -> list[tuple[str, bytes]]:
        """The scope's (answer key, question vector) entries, newest first, in one round trip."""
        try:
            raws = cast("list[bytes]", await self._redis.lrange(PREFIX + scope, 0, -1))
        except RedisError as exc:
            logger.warning("cache bypassed, Redis unreachable: %s", exc)
            return []
        return [_split_entry(raw) for raw in raws]

    async def add_semantic_entry(self, scope: str, key: str, vector: bytes, *, max_entries: int) -> None:
        """Newest first; the oldest entries beyond `max_entries` are dropped, the list lives the TTL."""
        entry = key.encode() + ENTRY_SEPARATOR + vector
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.lrem(PREFIX + scope, 0, entry)  # type: ignore[arg-type]  # bytes are sent as is
                pipe.lpush(PREFIX + scope, entry)
                pipe.ltrim(PREFIX + scope, 0, max_entries - 1)
                pipe.expire(PREFIX + scope, self._ttl_s)
                await pipe.execute()
        except RedisError as exc:
            logger.warning("cache write skipped, Redis unreachable: %s", exc)


def _split_entry(raw: bytes) -> tuple[str, bytes]:
    """Answer keys are ASCII, so the first separator ends the key whatever bytes the vector holds."""
    key, vector = raw.split(ENTRY_SEPARATOR, 1)
    return key.decode(), vector
