"""Re-embedding jobs in Redis: progress after every batch, and one job per collection at a time."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from rag_common.contracts import ReembedStatus
from rag_common.errors import UpstreamUnavailable

PREFIX = "rag:reembed:"
ACTIVE = "rag:reembed:active"
CLAIM = "rag:reembed:collection:"


def _unavailable() -> UpstreamUnavailable:
    return UpstreamUnavailable(
        "redis", "Redis, which keeps re-embedding jobs, is unreachable; try again shortly."
    )


class RedisReembedStore:
    def __init__(self, redis: Redis, *, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s

    async def claim(self, status: ReembedStatus) -> str | None:
        """Records the job unless its collection has one running; then that job's id."""
        try:
            if await self._redis.set(CLAIM + status.collection, status.job_id, nx=True):
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.set(PREFIX + status.job_id, status.model_dump_json())
                    pipe.sadd(ACTIVE, status.job_id)
                    await pipe.execute()
                return None
            holder = await self._redis.get(CLAIM + status.collection)
        except RedisError as exc:
            raise _unavailable() from exc
        return holder.decode() if isinstance(holder, bytes) else str(holder)

    async def get(self, job_id: str) -> ReembedStatus | None:
        try:
            raw = await self._redis.get(PREFIX + job_id)
        except RedisError as exc:
            raise _unavailable() from exc
        return ReembedStatus.model_validate_json(raw) if raw else None

    async def save(self, status: ReembedStatus) -> None:
        """Progress; a finished job leaves the active set, frees its collection and expires."""
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(PREFIX + status.job_id, status.model_dump_json())
                if status.finished:
                    pipe.srem(ACTIVE, status.job_id)
                    pipe.expire(PREFIX + status.job_id, self._ttl_s)
                    pipe.delete(CLAIM + status.collection)
                await pipe.execute()
        except RedisError as exc:
            raise _unavailable() from exc

    async def active(self) -> list[str]:
        try:
            members = await self._redis.smembers(ACTIVE)
        except RedisError as exc:
            raise _unavailable() from exc
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
