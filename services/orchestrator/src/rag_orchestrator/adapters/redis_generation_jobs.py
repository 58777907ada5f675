"""Generation jobs in Redis: records with a TTL, and a stream every orchestrator replica reads.

The stream is a work queue shared through one consumer group: XREADGROUP hands each entry to one
worker, which keeps it fresh while it runs (XCLAIM to itself) and acknowledges and deletes it once the
job is done. An entry whose worker went silent longer than the claim idle time (the process died) is
taken over with XAUTOCLAIM. So the stream's length is the jobs queued or running.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from rag_common.contracts import GenerationJobStatus, RagAnswer, RagJobRequest
from rag_common.errors import UpstreamUnavailable

from ..generation_jobs import Delivery

PREFIX = "rag:genjob:"
STREAM = "rag:genjobs"
GROUP = "workers"
FIELD = "job_id"


def _unavailable(exc: RedisError) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        "redis", "Redis, which keeps generation jobs, is unreachable; try again shortly."
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _deliveries(entries: list[tuple[bytes | str, dict[bytes | str, bytes | str]] | None]) -> list[Delivery]:
    """Entries deleted while pending come back as None (XAUTOCLAIM) and are skipped."""
    return [
        Delivery(entry_id=_text(entry_id), job_id=_text(fields.get(FIELD.encode()) or b""))
        for entry_id, fields in (e for e in entries if e is not None)
    ]


class RedisGenerationJobs:
    def __init__(self, redis: Redis, *, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s

    async def create(self, status: GenerationJobStatus, request: RagJobRequest) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(PREFIX + status.job_id, status.model_dump_json(), ex=self._ttl_s)
                pipe.set(PREFIX + status.job_id + ":request", request.model_dump_json(), ex=self._ttl_s)
                pipe.xadd(STREAM, {FIELD: status.job_id})
                await pipe.execute()
        except RedisError as exc:
            raise _unavailable(exc) from exc

    async def get(self, job_id: str) -> GenerationJobStatus | None:
        raw = await self._get(PREFIX + job_id)
        return GenerationJobStatus.model_validate_json(raw) if raw else None

    async def request(self, job_id: str) -> RagJobRequest | None:
        raw = await self._get(PREFIX + job_id + ":request")
        return RagJobRequest.model_validate_json(raw) if raw else None

    async def result(self, job_id: str) -> RagAnswer | None:
        raw = await self._get(PREFIX + job_id + ":result")
        return RagAnswer.model_validate_json(raw) if raw else None

    async def save(self, status: GenerationJobStatus, result: RagAnswer | None = None) -> None:
        """Every save starts the TTL again, so a job expires that long after its last change."""
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(PREFIX + status.job_id, status.model_dump_json(), ex=self._ttl_s)
                pipe.expire(PREFIX + status.job_id + ":request", self._ttl_s)
                if result is not None:
                    pipe.set(PREFIX + status.job_id + ":result", result.model_dump_json(), ex=self._ttl_s)
                await pipe.execute()
        except RedisError as exc:
            raise _unavailable(exc) from exc

    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise _unavailable(exc) from exc
        except RedisError as exc:
            raise _unavailable(exc) from exc

    async def take(self, consumer: str, *, idle_ms: int, block_ms: int) -> list[Delivery]:
        """One entry: first one whose worker went silent, else a new one (waiting up to `block_ms`)."""
        try:
            autoclaimed: list[Any] = await self._redis.xautoclaim(STREAM, GROUP, consumer, idle_ms, count=1)
            if taken := _deliveries(autoclaimed[1]):
                return taken
            read: Any = await self._redis.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=1, block=block_ms)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                await self.ensure_group()
                return []
            raise _unavailable(exc) from exc
        except RedisError as exc:
            raise _unavailable(exc) from exc
        return [d for _, entries in read or [] for d in _deliveries(entries)]

    async def keep(self, consumer: str, entry_id: str) -> None:
        """Resets the entry's idle time: its worker is alive, nobody may take it over."""
        try:
            await self._redis.xclaim(STREAM, GROUP, consumer, 0, [entry_id], justid=True)
        except RedisError as exc:
            raise _unavailable(exc) from exc

    async def done(self, entry_id: str) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xack(STREAM, GROUP, entry_id)
                pipe.xdel(STREAM, entry_id)
                await pipe.execute()
        except RedisError as exc:
            raise _unavailable(exc) from exc

    async def requeue(self, status: GenerationJobStatus, entry_id: str) -> None:
        """A worker stopping mid-job hands it back at once instead of waiting to be taken over."""
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(PREFIX + status.job_id, status.model_dump_json(), ex=self._ttl_s)
                pipe.xadd(STREAM, {FIELD: status.job_id})
                pipe.xack(STREAM, GROUP, entry_id)
                pipe.xdel(STREAM, entry_id)
                await pipe.execute()
        except RedisError as exc:
            raise _unavailable(exc) from exc

    async def depth(self) -> int:
        """Jobs queued or running."""
        try:
            return int(await self._redis.xlen(STREAM))
        except RedisError as exc:
            raise _unavailable(exc) from exc

    async def _get(self, key: str) -> bytes | str | None:
        try:
            raw = await self._redis.get(key)
        except RedisError as exc:
            raise _unavailable(exc) from exc
        return raw
