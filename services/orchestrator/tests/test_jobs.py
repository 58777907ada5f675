"""Ingestion jobs against a real Redis: progress, retries while a service is away, resume after a restart."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
import redis

from rag_common.contracts import DocumentIn, IngestRequest, Point
from rag_common.errors import UpstreamUnavailable
from rag_devstack.redis_server import RedisServer
from rag_orchestrator.adapters import redis_cache
from rag_orchestrator.adapters.redis_jobs import RedisJobStore
from rag_orchestrator.jobs import JobNotFound, JobRunner
from rag_orchestrator.pipeline import Pipeline

from .fakes import MemoryRetriever

DOCUMENTS = [DocumentIn(id=f"doc-{i}", text=f"Document number {i} about topic {i % 3}.") for i in range(10)]


class FlakyRetriever(MemoryRetriever):
    """Refuses the first `failures` upserts as if the retrieval service were restarting."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def upsert(self, collection: str, points: list[Point]) -> int:
        if self.failures > 0:
            self.failures -= 1
            raise UpstreamUnavailable("retrieval")
        return await super().upsert(collection, points)


@pytest.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[RedisJobStore]:
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushdb()
    connection = redis_cache.connect(redis_server.url, 0.5)
    yield RedisJobStore(connection, ttl_s=60)
    await connection.aclose()


def runner(store: RedisJobStore, pipeline: Pipeline, backoff: tuple[float, ...] = (0.01,) * 5) -> JobRunner:
    return JobRunner(store, pipeline, batch_documents=3, backoff_s=backoff)


async def wait_finished(jobs: JobRunner, job_id: str, tenant: str = "t") -> None:
    for _ in range(500):
        if (await jobs.status(job_id, tenant)).finished:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the job did not finish")


async def test_a_job_ingests_every_document_and_reports_progress(
    store: RedisJobStore, pipeline: Pipeline
) -> None:
    jobs = runner(store, pipeline)
    submitted = await jobs.submit(IngestRequest(collection="c", documents=DOCUMENTS), tenant="t")
    assert submitted.status == "queued"
    await wait_finished(jobs, submitted.job_id)
    done = await jobs.status(submitted.job_id, "t")
    assert (done.status, done.documents_done, done.documents_total) == ("succeeded", 10, 10)
    assert isinstance(pipeline.retriever, MemoryRetriever)
    assert done.chunks == len(pipeline.retriever.collections["c"]) == 10
    assert await store.active() == []


async def test_retrieval_restarting_mid_job_loses_nothing(store: RedisJobStore, pipeline: Pipeline) -> None:
    flaky = dataclasses.replace(pipeline, retriever=FlakyRetriever(failures=4))
    jobs = runner(store, flaky)
    job = await jobs.submit(IngestRequest(collection="c", documents=DOCUMENTS), tenant="t")
    await wait_finished(jobs, job.job_id)
    done = await jobs.status(job.job_id, "t")
    assert done.status == "succeeded"
    assert done.retries == 4
    stored = {p.payload["document_id"] for p in flaky.retriever.collections["c"].values()}  # type: ignore[attr-defined]
    assert stored == {d.id for d in DOCUMENTS}


async def test_a_job_that_keeps_failing_ends_failed_with_the_reason(
    store: RedisJobStore, pipeline: Pipeline
) -> None:
    dead = dataclasses.replace(pipeline, retriever=FlakyRetriever(failures=1_000))
    jobs = runner(store, dead, backoff=(0.0, 0.0))
    job = await jobs.submit(IngestRequest(collection="c", documents=DOCUMENTS), tenant="t")
    await wait_finished(jobs, job.job_id)
    failed = await jobs.status(job.job_id, "t")
    assert failed.status == "failed"
    assert "retrieval" in (failed.error or "")


async def test_an_unfinished_job_resumes_after_a_restart(store: RedisJobStore, pipeline: Pipeline) -> None:
    stalled = dataclasses.replace(pipeline, retriever=FlakyRetriever(failures=1_000))
    first = runner(store, stalled, backoff=(10.0,))
    job = await first.submit(IngestRequest(collection="c", documents=DOCUMENTS), tenant="t")
    await asyncio.sleep(0.05)
    await first.aclose()
    assert await store.active() == [job.job_id]
    second = runner(store, pipeline)
    assert await second.resume() == 1
    await wait_finished(second, job.job_id)
    assert (await second.status(job.job_id, "t")).documents_done == 10


async def test_another_tenants_job_is_404(store: RedisJobStore, pipeline: Pipeline) -> None:
    jobs = runner(store, pipeline)
    job = await jobs.submit(IngestRequest(collection="c", documents=DOCUMENTS[:1]), tenant="t")
    with pytest.raises(JobNotFound):
        await jobs.status(job.job_id, "someone-else")
    with pytest.raises(JobNotFound):
        await jobs.status("no-such-job", "t")
    await wait_finished(jobs, job.job_id)
