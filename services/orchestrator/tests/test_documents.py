from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
import redis

from rag_common.contracts import DocumentIn, IngestRequest, RagQuery
from rag_devstack.redis_server import RedisServer
from rag_orchestrator import documents as documents_service
from rag_orchestrator import ingest as ingest_service
from rag_orchestrator import rag as rag_service
from rag_orchestrator.adapters import redis_cache
from rag_orchestrator.adapters.redis_cache import RedisCache
from rag_orchestrator.pipeline import Pipeline

LONG = DocumentIn(
    id="guide", text=" ".join(f"Step {i}: water the green tea plants daily." for i in range(12))
)
SHORT = DocumentIn(id="guide", text="Step 1: green tea plants need shade.")
OTHER = DocumentIn(id="rail", text="The Trans-Siberian railway runs from Moscow to Vladivostok.")


@pytest.fixture
async def cached(pipeline: Pipeline, redis_server: RedisServer) -> AsyncIterator[Pipeline]:
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushdb()
    connection = redis_cache.connect(redis_server.url, 0.5)
    cache = RedisCache(connection, ttl_s=60)
    yield dataclasses.replace(pipeline, cache=cache)
    await connection.aclose()


async def ingest(pipeline: Pipeline, *documents: DocumentIn) -> None:
    await ingest_service.ingest(IngestRequest(collection="c", documents=list(documents)), pipeline=pipeline)


async def test_a_changed_document_with_fewer_chunks_leaves_no_stale_chunk(pipeline: Pipeline) -> None:
    await ingest(pipeline, LONG, OTHER)
    assert (await documents_service.get_document("c", "guide", pipeline=pipeline)).chunks[0].chunk_index == 0
    await ingest(pipeline, SHORT)
    guide = await documents_service.get_document("c", "guide", pipeline=pipeline)
    assert [c.text for c in guide.chunks] == [SHORT.text]
    counts = await documents_service.list_documents("c", pipeline=pipeline)
    assert [(d.document_id, d.chunks) for d in counts.documents] == [("guide", 1), ("rail", 1)]


async def test_reading_a_document_back_gives_its_chunks_in_order_with_spans(pipeline: Pipeline) -> None:
    await ingest(pipeline, LONG)
    guide = await documents_service.get_document("c", "guide", pipeline=pipeline)
    assert [c.chunk_index for c in guide.chunks] == list(range(len(guide.chunks)))
    assert all(LONG.text[c.start : c.end] == c.text for c in guide.chunks)


async def test_a_deleted_document_is_never_cited_again(cached: Pipeline) -> None:
    await ingest(cached, SHORT, OTHER)
    question = RagQuery(question="What do green tea plants need?", collection="c", top_k=2)
    before = await rag_service.answer(question, pipeline=cached)
    assert "guide" in {c.document_id for c in before.citations}
    assert (await rag_service.answer(question, pipeline=cached)).cached
    deleted = await documents_service.delete_document("c", "guide", pipeline=cached)
    assert deleted.chunks_deleted == 1
    after = await rag_service.answer(question, pipeline=cached)
    assert not after.cached
    assert "guide" not in {c.document_id for c in after.citations}


async def test_unknown_documents_are_404(pipeline: Pipeline) -> None:
    await ingest(pipeline, OTHER)
    with pytest.raises(documents_service.DocumentNotFound):
        await documents_service.get_document("c", "nope", pipeline=pipeline)
    with pytest.raises(documents_service.DocumentNotFound):
        await documents_service.delete_document("c", "nope", pipeline=pipeline)
