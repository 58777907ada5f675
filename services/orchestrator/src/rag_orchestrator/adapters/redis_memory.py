"""Conversation turns as a capped Redis list per session, expiring a while after the last turn.

A Redis failure turns memory off for that request (the question is answered on its own); it never
fails the request.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..memory import ConversationStore, NoMemory, Turn

logger = logging.getLogger(__name__)

PREFIX = "rag:memory:"


class RedisMemory:
    def __init__(self, redis: Redis, *, max_turns: int, ttl_s: int) -> None:
        self._redis = redis
        self._max_turns = max_turns
        self._ttl_s = ttl_s

    async def turns(self, key: str) -> list[Turn] | None:
        try:
            raws = await self._redis.lrange(PREFIX + key, 0, -1)
        except RedisError as exc:
            logger.warning("conversation memory off, Redis unreachable: %s", exc)
            return None
        return [Turn.model_validate_json(raw) for raw in raws]

    async def append(self, key: str, turn: Turn) -> bool:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(PREFIX + key, turn.model_dump_json())
                pipe.ltrim(PREFIX + key, -self._max_turns, -1)
                pipe.expire(PREFIX + key, self._ttl_s)
                await pipe.execute()
        except RedisError as exc:
            logger.warning("conversation turn not kept, Redis unreachable: %s", exc)
            return False
        return True


def memory_for(redis: Redis | None, *, max_turns: int, ttl_s: int) -> ConversationStore:
    if redis is None or max_turns == 0:
        return NoMemory()
    return RedisMemory(redis, max_turns=max_turns, ttl_s=ttl_s)
