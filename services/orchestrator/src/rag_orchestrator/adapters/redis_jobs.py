"""Ingestion jobs in Redis: the submitted documents and the progress, so a restart loses nothing."""

from __future__ import annotations

import json

from redis.asyncio import Redis
from redis.exceptions import RedisError

from rag_common.contracts import DocumentIn, JobStatus
from rag_common.errors import UpstreamUnavailable

PREFIX = "rag:job:"
ACTIVE = "rag:jobs:active"


def _unavailable(exc: RedisError) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        "redis", "Redis, which keeps ingestion jobs, is unreachable; try again shortly."
    )


class RedisJobStore:
    def __init__(self, redis: Redis, *, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s

    async def create(self, status: JobStatus, documents: list[DocumentIn]) -> None:
        payload = json.dumps([d.model_dump() for d in documents])
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(PREFIX + status.job_id, status.model_dump_json())
                pipe.set(PREFIX + status.job_id + ":documents", payload)
                pipe.sadd(ACTIVE, status.job_id)
                await pipe.execute()
        except RedisError as exc:
            raise _unavailable(exc) from exc

    async def get(self, job_id: str) -> JobStatus | None:
        try:
            raw = await self._redis.get(PREFIX + job_id)
        except RedisError as exc:
            raise _unavailable(exc) from exc
        return JobStatus.model_validate_json(raw) if raw else None

    async def documents(self, job_id: str) -> list[DocumentIn]:
        try:
            raw = await self._redis.get(PREFIX + job_id + ":documents")
        except RedisError as exc:
            raise _unavailable(exc) from exc
        return [DocumentIn.model_validate(d) for d in json.loads(raw or "[]")]

    async def save(self, status: JobStatus) -> None:
        """Progress; a finished job leaves the active set and expires with its documents."""
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(PREFIX + status.job_id, status.model_dump_json())
                if status.finished:
                    pipe.srem(ACTIVE, status.job_id)
                    pipe.expire(PREFIX + status.job_id, self._ttl_s)
                    pipe.delete(PREFIX + status.job_id + ":documents")
                await pipe.execute()
        except RedisError as exc:
            raise _unavailable(exc) from exc

    async def active(self) -> list[str]:
        try:
            members = await self._redis.smembers(ACTIVE)
        except RedisError as exc:
            raise _unavailable(exc) from exc
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
