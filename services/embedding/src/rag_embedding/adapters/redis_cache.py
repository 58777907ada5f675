"""Vectors in Redis, stored compactly: a little-endian uint32 token count, then float32 values.

Every Redis failure, refusal or timeout is a miss (or a skipped write) with a warning: the cache can
slow a request by at most its timeout and fail none.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence

import numpy as np
from redis.asyncio import Redis
from redis.exceptions import RedisError

from rag_common.redis_pool import connect as connect

from ..ports import CachedVector

logger = logging.getLogger(__name__)

_TOKENS = struct.Struct("<I")
_FLOAT32 = np.dtype("<f4")


def pack(item: CachedVector) -> bytes:
    return _TOKENS.pack(item.tokens) + np.asarray(item.vector, dtype=_FLOAT32).tobytes()


def unpack(raw: bytes) -> CachedVector:
    (tokens,) = _TOKENS.unpack_from(raw)
    vector = np.frombuffer(raw, dtype=_FLOAT32, offset=_TOKENS.size)
    return CachedVector(vector=vector.tolist(), tokens=tokens)


class RedisVectorCache:
    def __init__(self, redis: Redis, *, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s

    async def get_many(self, keys: Sequence[str]) -> list[CachedVector | None]:
        try:
            raws = await self._redis.mget(list(keys))
        except (RedisError, OSError) as exc:
            logger.warning("embedding cache bypassed, Redis unreachable: %r", exc)
            return [None] * len(keys)
        return [unpack(raw) if isinstance(raw, bytes) else None for raw in raws]

    async def put_many(self, items: Mapping[str, CachedVector]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, item in items.items():
                    pipe.set(key, pack(item), ex=self._ttl_s)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            logger.warning("embedding cache write skipped, Redis unreachable: %r", exc)
