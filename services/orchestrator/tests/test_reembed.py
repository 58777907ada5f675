"""Re-embedding jobs against a real Redis: progress, switch only when complete, failure leaves the old
collection serving; and the embedding model id travels with every vector."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import redis

from rag_common.contracts import (
    CollectionInfo,
    EmbeddingResponse,
    Point,
    ReembedStatus,
    ScrollRequest,
    ScrollResponse,
    SearchRequest,
    StoredPoint,
    Usage,
)
from rag_common.errors import Conflict, NotFound, UpstreamUnavailable
from rag_common.http import ServiceClient
from rag_devstack.redis_server import RedisServer
from rag_orchestrator.adapters import redis_cache
from rag_orchestrator.adapters.cached_embedder import CachedEmbedder
from rag_orchestrator.adapters.http_clients import EmbeddingClient, RetrievalClient
from rag_orchestrator.adapters.redis_cache import RedisCache
from rag_orchestrator.adapters.redis_reembed import RedisReembedStore
from rag_orchestrator.cache import NoCache
from rag_orchestrator.embedding_model import EmbeddingModel, vectors_made_by
from rag_orchestrator.reembed import MigrationInProgress, ReembedRunner

from .fakes import BagOfWordsEmbedder, MemoryRetriever

OLD, NEW = "all-MiniLM-L6-v2", "all-MiniLM-L6-v2-onnx-int8"
POINTS = 10


class SwitchableEmbedder(BagOfWordsEmbedder):
    """Reports `model`; a different model gives different vectors. Can pause or fail after some calls."""

    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model
        self.gate: asyncio.Event | None = None
        self.fail_after: int | None = None

    async def embed_with_model(self, texts: list[str]) -> tuple[str, list[list[float]]]:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise UpstreamUnavailable("embedding")
        if self.gate is not None and len(self.calls) >= 2:
            await self.gate.wait()
        vectors = await self.embed([f"{self.model} {text}" for text in texts])
        return self.model, vectors


class ModelRetriever(MemoryRetriever):
    """The retrieval service's collection rules in memory: a model per collection, write locks, replace."""

    def __init__(self) -> None:
        super().__init__()
        self.models: dict[str, str | None] = {}
        self.locks: dict[str, str | None] = {}

    async def get_collection(self, name: str) -> CollectionInfo:
        if name not in self.collections:
            raise NotFound(f"Collection '{name}' does not exist.")
        size = len(next(iter(self.collections[name].values())).vector) if self.collections[name] else 64
        return CollectionInfo(
            name=name,
            vector_size=size,
            distance="cosine",
            points_count=len(self.collections[name]),
            embedding_model=self.models.get(name),
            write_lock=self.locks.get(name),
        )

    async def create_collection(self, name: str, vector_size: int, model: str | None) -> CollectionInfo:
        self.collections.setdefault(name, {})
        self.models.setdefault(name, model)
        return await self.get_collection(name)

    async def scroll_page(self, collection: str, request: ScrollRequest) -> ScrollResponse:
        ids = sorted(self.collections[collection])
        start = ids.index(request.offset) if request.offset else 0
        page = ids[start : start + request.limit]
        following = ids[start + request.limit] if start + request.limit < len(ids) else None
        points = self.collections[collection]
        return ScrollResponse(
            points=[StoredPoint(id=i, payload=points[i].payload) for i in page], next_offset=following
        )

    async def upsert_model(self, collection: str, points: list[Point], model: str | None) -> int:
        if self.locks.get(collection):
            raise Conflict(f"Collection '{collection}' is read-only ({self.locks[collection]}).")
        if model and self.models.get(collection) not in (None, model):
            raise Conflict(f"Collection '{collection}' holds vectors of model '{self.models[collection]}'.")
        return await self.upsert(collection, points)

    async def replace(self, name: str, source: str) -> CollectionInfo:
        self.collections[name] = self.collections.pop(source)
        self.models[name] = self.models.pop(source)
        self.locks[name] = self.locks.pop(source, None)
        return await self.get_collection(name)

    async def set_write_lock(self, name: str, owner: str | None) -> CollectionInfo:
        await self.get_collection(name)
        self.locks[name] = owner
        return await self.get_collection(name)

    async def delete_collection(self, name: str) -> None:
        del self.collections[name]
        self.models.pop(name, None)


class BumpCounter(NoCache):
    def __init__(self) -> None:
        self.bumps: list[str] = []

    async def bump(self, collection: str) -> None:
        self.bumps.append(collection)


@pytest.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[RedisReembedStore]:
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushdb()
    connection = redis_cache.connect(redis_server.url, 0.5)
    yield RedisReembedStore(connection, ttl_s=60)
    await connection.aclose()


@pytest.fixture
async def retriever() -> ModelRetriever:
    seeded = ModelRetriever()
    old = SwitchableEmbedder(OLD)
    texts = [f"chunk {i} about topic {i % 3}" for i in range(POINTS)]
    _, vectors = await old.embed_with_model(texts)
    await seeded.create_collection("docs", 64, OLD)
    points = [
        Point(id=f"p{i:02d}", vector=v, payload={"text": t, "document_id": f"d{i}"})
        for i, (t, v) in enumerate(zip(texts, vectors, strict=True))
    ]
    await seeded.upsert_model("docs", points, OLD)
    return seeded


def runner(
    store: RedisReembedStore,
    retriever: ModelRetriever,
    embedder: SwitchableEmbedder,
    cache: NoCache | None = None,
) -> ReembedRunner:
    return ReembedRunner(
        store,
        embedder=embedder,
        retrieval=retriever,
        cache=cache or NoCache(),
        batch_points=3,
        backoff_s=(0.01,),
    )


async def wait_for(jobs: ReembedRunner, job_id: str, done: int | None = None) -> ReembedStatus:
    for _ in range(500):
        status = await jobs.status(job_id, "t")
        if status.finished or (done is not None and status.points_done >= done):
            return status
        await asyncio.sleep(0.01)
    raise AssertionError("the job did not get there")


async def test_a_job_reembeds_every_point_and_switches_only_when_complete(
    store: RedisReembedStore, retriever: ModelRetriever
) -> None:
    embedder, cache = SwitchableEmbedder(NEW), BumpCounter()
    jobs = runner(store, retriever, embedder, cache)
    before = {pid: p.payload for pid, p in retriever.collections["docs"].items()}
    job = await jobs.submit("docs", "t")
    assert (job.status, job.source_model, job.points_total) == ("queued", OLD, POINTS)

    done = await wait_for(jobs, job.job_id)
    assert (done.status, done.points_done, done.points_total) == ("succeeded", POINTS, POINTS)
    assert (done.source_model, done.target_model) == (OLD, NEW)
    info = await retriever.get_collection("docs")
    assert (info.embedding_model, info.write_lock) == (NEW, None)
    assert {pid: p.payload for pid, p in retriever.collections["docs"].items()} == before
    _, expected = await SwitchableEmbedder(NEW).embed_with_model([str(before["p04"]["text"])])
    assert retriever.collections["docs"]["p04"].vector == expected[0]
    assert set(retriever.collections) == {"docs"}  # the shadow became the collection
    assert cache.bumps == ["docs", "docs"]


async def test_progress_is_reported_and_writes_are_refused_while_it_runs(
    store: RedisReembedStore, retriever: ModelRetriever
) -> None:
    embedder = SwitchableEmbedder(NEW)
    embedder.gate = asyncio.Event()
    jobs = runner(store, retriever, embedder)
    job = await jobs.submit("docs", "t")

    running = await wait_for(jobs, job.job_id, done=3)
    assert (running.status, running.points_done, running.points_total) == ("running", 3, POINTS)
    assert (await retriever.get_collection("docs")).embedding_model == OLD  # not switched yet
    with pytest.raises(Conflict, match="read-only"):
        await retriever.upsert_model("docs", [retriever.collections["docs"]["p00"]], OLD)
    with pytest.raises(MigrationInProgress, match=job.job_id):
        await jobs.submit("docs", "t")

    embedder.gate.set()
    assert (await wait_for(jobs, job.job_id)).status == "succeeded"
    assert (await retriever.get_collection("docs")).write_lock is None


async def test_a_failure_midway_leaves_the_old_collection_serving_and_writable(
    store: RedisReembedStore, retriever: ModelRetriever
) -> None:
    embedder = SwitchableEmbedder(NEW)
    embedder.fail_after = 3  # the probe and two batches, then the embedding service is gone
    old_vectors = {pid: p.vector for pid, p in retriever.collections["docs"].items()}
    jobs = runner(store, retriever, embedder)
    job = await jobs.submit("docs", "t")

    failed = await wait_for(jobs, job.job_id)
    assert failed.status == "failed"
    assert failed.points_done == 6
    assert "embedding" in (failed.error or "")
    info = await retriever.get_collection("docs")
    assert (info.embedding_model, info.write_lock, info.points_count) == (OLD, None, POINTS)
    assert {pid: p.vector for pid, p in retriever.collections["docs"].items()} == old_vectors
    assert set(retriever.collections) == {"docs"}  # the half-filled shadow is gone
    again = await jobs.submit("docs", "t")  # the collection is free for another try
    await wait_for(jobs, again.job_id)


async def test_an_interrupted_job_resumes_where_its_scroll_stopped(
    store: RedisReembedStore, retriever: ModelRetriever
) -> None:
    embedder = SwitchableEmbedder(NEW)
    embedder.gate = asyncio.Event()
    first = runner(store, retriever, embedder)
    job = await first.submit("docs", "t")
    await wait_for(first, job.job_id, done=3)
    await first.aclose()
    assert (await store.get(job.job_id)) is not None

    embedder.gate.set()
    second = runner(store, retriever, embedder)
    assert await second.resume() == 1
    done = await wait_for(second, job.job_id)
    assert (done.status, done.points_done) == ("succeeded", POINTS)
    assert (await retriever.get_collection("docs")).embedding_model == NEW


async def test_the_status_is_only_visible_to_its_tenant(
    store: RedisReembedStore, retriever: ModelRetriever
) -> None:
    jobs = runner(store, retriever, SwitchableEmbedder(NEW))
    job = await jobs.submit("docs", "t")
    with pytest.raises(NotFound):
        await jobs.status(job.job_id, "someone-else")
    await wait_for(jobs, job.job_id)


async def test_cached_vectors_are_keyed_by_the_model_the_service_reports(redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushdb()
    connection = redis_cache.connect(redis_server.url, 0.5)
    model = EmbeddingModel(ttl_s=60)
    inner = SwitchableEmbedder(OLD)
    model.observe(OLD)
    embedder = CachedEmbedder(inner, RedisCache(connection, ttl_s=60), namespace=model)

    first = await embedder.embed(["green tea"])
    assert (await embedder.embed(["green tea"]))[0] == pytest.approx(first[0], abs=1e-6)  # stored as float32
    assert len(inner.calls) == 1

    inner.model = NEW  # the backend was switched: the next response reports it
    model.observe(NEW)
    switched = await embedder.embed(["green tea"])
    assert switched[0] != pytest.approx(first[0], abs=1e-6)
    assert len(inner.calls) == 2
    await connection.aclose()


async def test_a_stale_model_id_sends_the_next_embedding_to_the_service() -> None:
    model = EmbeddingModel(ttl_s=0.01)
    model.observe(OLD)
    await asyncio.sleep(0.02)
    assert (model.fresh(), model.last) == (None, OLD)


async def test_the_retrieval_client_declares_the_model_of_every_vector() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        seen.append(body)
        if request.url.path.endswith("/search"):
            return httpx.Response(200, json={"hits": []})
        if request.url.path.endswith("/points"):
            return httpx.Response(200, json={"upserted": 1})
        return httpx.Response(
            200, json={"name": "c", "vector_size": 2, "distance": "cosine", "points_count": 0}
        )

    def embeddings(request: httpx.Request) -> httpx.Response:
        data = [{"index": 0, "embedding": [1.0, 0.0]}]
        return httpx.Response(200, json={"data": data, "model": NEW, "usage": {}})

    model = EmbeddingModel()
    embedding = EmbeddingClient(
        ServiceClient("embedding", "http://e", transport=httpx.MockTransport(embeddings)), model
    )
    retrieval = RetrievalClient(
        ServiceClient("retrieval", "http://r", transport=httpx.MockTransport(handler)), model
    )
    vector = (await embedding.embed(["q"]))[0]
    await retrieval.ensure_collection("c", 2)
    await retrieval.upsert("c", [Point(id="p", vector=vector)])
    await retrieval.search("c", SearchRequest(vector=vector))
    assert [body["embedding_model"] for body in seen] == [NEW, NEW, NEW]


@pytest.mark.parametrize(
    ("model", "version", "made_by"),
    [
        ("all-MiniLM-L6-v2", None, "all-MiniLM-L6-v2"),
        ("all-MiniLM-L6-v2", "all-MiniLM-L6-v2@1a2b3c4d", "all-MiniLM-L6-v2@1a2b3c4d"),
        ("all-MiniLM-L6-v2", "v2", "all-MiniLM-L6-v2@v2"),
    ],
)
def test_vectors_are_identified_by_the_model_version_that_made_them(
    model: str, version: str | None, made_by: str
) -> None:
    response = EmbeddingResponse(data=[], model=model, usage=Usage(), model_version=version)
    assert vectors_made_by(response) == made_by
