"""Ingestion as background jobs: documents in batches, each retried while a downstream service is
away, progress saved after every batch, unfinished jobs resumed when the orchestrator starts."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Protocol

from rag_common.contracts import DocumentIn, IngestRequest, JobStatus
from rag_common.errors import NotFound, ServiceError, ServiceUnavailable

from . import ingest as ingest_service
from .background import JobTasks
from .pipeline import Pipeline

logger = logging.getLogger(__name__)


class JobStore(Protocol):
    async def create(self, status: JobStatus, documents: list[DocumentIn]) -> None: ...

    async def get(self, job_id: str) -> JobStatus | None: ...

    async def documents(self, job_id: str) -> list[DocumentIn]: ...

    async def save(self, status: JobStatus) -> None: ...

    async def active(self) -> list[str]: ...


class JobNotFound(NotFound):
    type_slug = "job-not-found"

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"Ingestion job '{job_id}' does not exist (finished jobs expire).", extra={"job_id": job_id}
        )


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        pipeline: Pipeline,
        *,
        batch_documents: int,
        backoff_s: Sequence[float],
        concurrency: int = 1,
    ) -> None:
        self._store = store
        self._pipeline = pipeline
        self._batch = batch_documents
        self._backoff_s = backoff_s
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks = JobTasks()

    async def submit(self, request: IngestRequest, tenant: str) -> JobStatus:
        status = JobStatus(
            job_id=uuid.uuid4().hex,
            collection=request.collection,
            tenant=tenant,
            documents_total=len(request.documents),
        )
        await self._store.create(status, list(request.documents))
        self._schedule(status.job_id)
        return status

    async def status(self, job_id: str, tenant: str) -> JobStatus:
        status = await self._store.get(job_id)
        if status is None or status.tenant != tenant:
            raise JobNotFound(job_id)
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
        self._tasks.start(self._run(job_id), name=f"ingest-job-{job_id}")

    async def _run(self, job_id: str) -> None:
        async with self._slots:
            status = await self._store.get(job_id)
            if status is None or status.finished:
                return
            documents = await self._store.documents(job_id)
            try:
                await self._work(status, documents)
            except ServiceError as exc:
                status.status, status.error = "failed", exc.detail
                logger.error("ingestion job %s failed: %s", job_id, exc.detail)
            status.updated_at = time.time()
            await self._store.save(status)

    async def _work(self, status: JobStatus, documents: list[DocumentIn]) -> None:
        status.status = "running"
        while status.documents_done < len(documents):
            batch = documents[status.documents_done : status.documents_done + self._batch]
            status.chunks += await self._ingest_with_retries(status, batch)
            status.documents_done += len(batch)
            status.updated_at = time.time()
            await self._store.save(status)
        status.status = "succeeded"

    async def _ingest_with_retries(self, status: JobStatus, batch: list[DocumentIn]) -> int:
        """Idempotent (deterministic point ids), so a batch cut off half-way is simply run again."""
        request = IngestRequest(collection=status.collection, documents=batch)
        attempt = 0
        while True:
            try:
                return (await ingest_service.ingest(request, pipeline=self._pipeline)).chunks
            except ServiceUnavailable as exc:
                if attempt >= len(self._backoff_s):
                    raise
                delay = self._backoff_s[attempt]
                attempt += 1
                status.retries += 1
                logger.warning("job %s: %s; retrying in %.1f s", status.job_id, exc.detail, delay)
                await asyncio.sleep(delay)
