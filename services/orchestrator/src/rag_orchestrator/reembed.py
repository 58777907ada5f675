"""Re-embedding jobs: a collection moved to the embedding model in service, switched only when complete.

The job write-locks the collection (ingestion and deletes get 409 until it ends), fills a shadow
collection created for the new model from a scroll of the old one, batch by batch with progress
saved, and then has the retrieval service serve the shadow under the collection's name in one step
(an alias), dropping the old collection. A job that fails leaves the old collection serving and
writable and removes its shadow; one cut off by a restart resumes where its scroll stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Protocol, TypeVar

from rag_common.contracts import (
    CollectionInfo,
    Point,
    ReembedStatus,
    ScrollRequest,
    ScrollResponse,
    StoredPoint,
)
from rag_common.errors import Conflict, NotFound, ServiceError, ServiceUnavailable, UnprocessableContent

from .background import JobTasks
from .embedding_model import ModelEmbedder
from .ports import Cache

logger = logging.getLogger(__name__)
T = TypeVar("T")
PROBE_TEXT = "collection dimension probe"
SHADOW_PREFIX = "reembed-"


class ReembedStore(Protocol):
    async def claim(self, status: ReembedStatus) -> str | None: ...

    async def get(self, job_id: str) -> ReembedStatus | None: ...

    async def save(self, status: ReembedStatus) -> None: ...

    async def active(self) -> list[str]: ...


class CollectionAdmin(Protocol):
    """The retrieval service's collection management, beyond what a query needs."""

    async def get_collection(self, name: str) -> CollectionInfo: ...

    async def create_collection(self, name: str, vector_size: int, model: str | None) -> CollectionInfo: ...

    async def scroll_page(self, collection: str, request: ScrollRequest) -> ScrollResponse: ...

    async def upsert_model(self, collection: str, points: list[Point], model: str | None) -> int: ...

    async def replace(self, name: str, source: str) -> CollectionInfo: ...

    async def set_write_lock(self, name: str, owner: str | None) -> CollectionInfo: ...

    async def delete_collection(self, name: str) -> None: ...


class ReembedJobNotFound(NotFound):
    type_slug = "job-not-found"

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"Re-embedding job '{job_id}' does not exist (finished jobs expire).", extra={"job_id": job_id}
        )


class MigrationInProgress(Conflict):
    type_slug = "migration-in-progress"

    def __init__(self, collection: str, job_id: str) -> None:
        super().__init__(
            f"Collection '{collection}' is already being re-embedded by job '{job_id}'.",
            extra={"collection": collection, "job_id": job_id},
        )


class ModelChanged(Conflict):
    def __init__(self, expected: str | None, got: str) -> None:
        super().__init__(
            f"The embedding model changed from '{expected}' to '{got}' during the job; submit it again."
        )


def lock_owner(job_id: str) -> str:
    return f"re-embedding job {job_id}"


class ReembedRunner:
    def __init__(
        self,
        store: ReembedStore,
        *,
        embedder: ModelEmbedder,
        retrieval: CollectionAdmin,
        cache: Cache,
        batch_points: int,
        backoff_s: Sequence[float],
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._retrieval = retrieval
        self._cache = cache
        self._batch = batch_points
        self._backoff_s = backoff_s
        self._tasks = JobTasks()

    async def submit(self, collection: str, tenant: str) -> ReembedStatus:
        """Checks the collection exists and claims it; from the 202 on, writes to it are refused."""
        info = await self._retrieval.get_collection(collection)
        status = ReembedStatus(
            job_id=uuid.uuid4().hex,
            collection=collection,
            tenant=tenant,
            source_model=info.embedding_model,
            points_total=info.points_count,
        )
        if (holder := await self._store.claim(status)) is not None:
            raise MigrationInProgress(collection, holder)
        await self._retrieval.set_write_lock(collection, lock_owner(status.job_id))
        self._schedule(status.job_id)
        return status

    async def status(self, job_id: str, tenant: str) -> ReembedStatus:
        status = await self._store.get(job_id)
        if status is None or status.tenant != tenant:
            raise ReembedJobNotFound(job_id)
        return status

    async def resume(self) -> int:
        active = await self._store.active()
        for job_id in active:
            self._schedule(job_id)
        return len(active)

    async def aclose(self) -> None:
        """Stops the workers; their jobs stay active in Redis and resume at the next start."""
        await self._tasks.aclose()

    def _schedule(self, job_id: str) -> None:
        self._tasks.start(self._run(job_id), name=f"reembed-job-{job_id}")

    async def _run(self, job_id: str) -> None:
        status = await self._store.get(job_id)
        if status is None or status.finished:
            return
        try:
            await self._work(status)
        except ServiceError as exc:
            status.status, status.error = "failed", exc.detail
            logger.error("re-embedding job %s failed: %s", job_id, exc.detail)
            await self._abandon(status)
        status.updated_at = time.time()
        await self._store.save(status)

    async def _work(self, status: ReembedStatus) -> None:
        status.status = "running"
        if status.shadow is None:
            await self._prepare(status)
        done = status.points_done > 0 and status.offset is None
        while not done:
            request = ScrollRequest(limit=self._batch, offset=status.offset)
            page = await self._retrying(
                status, partial(self._retrieval.scroll_page, status.collection, request)
            )
            if page.points:
                await self._retrying(status, partial(self._reembed, status, page.points))
            status.points_done += len(page.points)
            status.offset = page.next_offset
            status.updated_at = time.time()
            await self._store.save(status)
            done = page.next_offset is None
        # Bumped before and after, like every change: no cached answer from the old vectors survives.
        await self._cache.bump(status.collection)
        await self._retrieval.replace(status.collection, status.shadow or "")
        await self._cache.bump(status.collection)
        status.status = "succeeded"

    async def _prepare(self, status: ReembedStatus) -> None:
        """The shadow collection, sized and labelled by the model the embedding service has now."""
        model, vectors = await self._embedder.embed_with_model([PROBE_TEXT])
        status.target_model = model
        status.shadow = SHADOW_PREFIX + status.job_id
        await self._retrieval.create_collection(status.shadow, len(vectors[0]), model)
        await self._store.save(status)

    async def _reembed(self, status: ReembedStatus, points: list[StoredPoint]) -> None:
        texts = [str(point.payload.get("text") or "") for point in points]
        if missing := [point.id for point, text in zip(points, texts, strict=True) if not text.strip()]:
            raise UnprocessableContent(f"Point '{missing[0]}' has no text to re-embed.")
        model, vectors = await self._embedder.embed_with_model(texts)
        if model != status.target_model:
            raise ModelChanged(status.target_model, model)
        fresh = [
            Point(id=point.id, vector=vector, payload=point.payload)
            for point, vector in zip(points, vectors, strict=True)
        ]
        await self._retrieval.upsert_model(status.shadow or "", fresh, model)

    async def _retrying(self, status: ReembedStatus, step: Callable[[], Awaitable[T]]) -> T:
        """Every step is idempotent (same point ids), so one cut off by an outage simply runs again."""
        attempt = 0
        while True:
            try:
                return await step()
            except ServiceUnavailable as exc:
                if attempt >= len(self._backoff_s):
                    raise
                delay = self._backoff_s[attempt]
                attempt += 1
                logger.warning(
                    "re-embedding job %s: %s; retrying in %.1f s", status.job_id, exc.detail, delay
                )
                await asyncio.sleep(delay)

    async def _abandon(self, status: ReembedStatus) -> None:
        """The old collection serves on, writable again; the shadow goes. Each step is best effort."""
        steps: list[Callable[[], Awaitable[object]]] = [
            lambda: self._retrieval.set_write_lock(status.collection, None)
        ]
        if status.shadow is not None:
            steps.append(lambda: self._retrieval.delete_collection(status.shadow or ""))
        for step in steps:
            try:
                await step()
            except ServiceError as exc:
                logger.warning("re-embedding job %s: cleanup step failed: %s", status.job_id, exc.detail)
