"""The reranking stage: more candidates are retrieved, the reranker's order decides what is cited."""

from __future__ import annotations

import dataclasses

import httpx
import redis
from fastapi import FastAPI

from rag_common.contracts import (
    DocumentIn,
    IngestRequest,
    RagQuery,
    RerankRequest,
    RerankResponse,
    RerankResult,
    SearchHit,
    SearchRequest,
)
from rag_common.http import ServiceClient
from rag_devstack.redis_server import RedisServer
from rag_orchestrator import ingest as ingest_service
from rag_orchestrator import rag as rag_service
from rag_orchestrator.adapters import redis_cache
from rag_orchestrator.adapters.http_clients import RerankClient
from rag_orchestrator.adapters.redis_cache import RedisCache
from rag_orchestrator.pipeline import Pipeline

from .fakes import MemoryRetriever

DOCS = [
    DocumentIn(id="tea", text="Green tea is made from leaves."),
    DocumentIn(id="more-tea", text="Green tea is popular; tea is made in China."),
    DocumentIn(id="cedar", text="Cedar trees grow in Lebanon; tea is not made from cedar."),
]


def embedding_service_stand_in(received: list[RerankRequest]) -> FastAPI:
    """Speaks `/v1/rerank` as the embedding service does; scores a document by the word 'cedar'."""
    app = FastAPI()

    @app.post("/v1/rerank")
    async def rerank(body: RerankRequest) -> RerankResponse:
        received.append(body)
        scores = [
            float(document.count("cedar")) - index / 100 for index, document in enumerate(body.documents)
        ]
        ranked = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)[: body.top_n]
        return RerankResponse(
            model="stand-in", results=[RerankResult(index=i, score=scores[i]) for i in ranked]
        )

    return app


class CountingRetriever(MemoryRetriever):
    def __init__(self) -> None:
        super().__init__()
        self.top_ks: list[int] = []

    async def search(self, collection: str, query: SearchRequest) -> list[SearchHit]:
        self.top_ks.append(query.top_k)
        return await super().search(collection, query)


async def test_the_client_sends_query_documents_and_top_n_and_returns_indices_best_first() -> None:
    received: list[RerankRequest] = []
    transport = httpx.ASGITransport(app=embedding_service_stand_in(received))
    client = RerankClient(ServiceClient("embedding", "http://embedding", transport=transport))
    order = await client.rerank("which tree?", ["oak", "a cedar", "cedar cedar"], top_n=2)
    assert order == [2, 1]
    assert received == [
        RerankRequest(query="which tree?", documents=["oak", "a cedar", "cedar cedar"], top_n=2)
    ]


async def test_with_a_reranker_candidates_are_retrieved_and_its_order_is_cited(pipeline: Pipeline) -> None:
    received: list[RerankRequest] = []
    transport = httpx.ASGITransport(app=embedding_service_stand_in(received))
    retriever = CountingRetriever()
    reranking = dataclasses.replace(
        pipeline,
        retriever=retriever,
        reranker=RerankClient(ServiceClient("embedding", "http://embedding", transport=transport)),
        settings=pipeline.settings.model_copy(update={"rerank_candidates": 3}),
    )
    await ingest_service.ingest(IngestRequest(collection="c", documents=DOCS), pipeline=reranking)

    answer = await rag_service.answer(
        RagQuery(question="What is green tea made from?", collection="c", top_k=1), pipeline=reranking
    )

    assert retriever.top_ks == [3], "the reranker chooses from rerank_candidates, not top_k"
    assert len(received[0].documents) == 3
    assert [c.document_id for c in answer.citations] == ["cedar"]
    assert answer.citations[0].index == 1


async def test_without_a_reranker_retrieval_is_asked_for_top_k_only(pipeline: Pipeline) -> None:
    retriever = CountingRetriever()
    plain = dataclasses.replace(pipeline, retriever=retriever)
    await ingest_service.ingest(IngestRequest(collection="c", documents=DOCS), pipeline=plain)
    answer = await rag_service.answer(
        RagQuery(question="What is green tea made from?", collection="c", top_k=1), pipeline=plain
    )
    assert retriever.top_ks == [1]
    assert answer.citations[0].document_id != "cedar"


async def test_a_reranked_answer_is_never_served_from_the_plain_answers_cache(
    pipeline: Pipeline, redis_server: RedisServer
) -> None:
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushdb()
    connection = redis_cache.connect(redis_server.url, 0.5)
    plain = dataclasses.replace(pipeline, cache=RedisCache(connection, ttl_s=60))
    transport = httpx.ASGITransport(app=embedding_service_stand_in([]))
    reranking = dataclasses.replace(
        plain, reranker=RerankClient(ServiceClient("embedding", "http://embedding", transport=transport))
    )
    question = RagQuery(question="What is green tea made from?", collection="c", top_k=1)
    try:
        await ingest_service.ingest(IngestRequest(collection="c", documents=DOCS), pipeline=plain)
        first = await rag_service.answer(question, pipeline=plain)
        again = await rag_service.answer(question, pipeline=plain)
        reranked = await rag_service.answer(question, pipeline=reranking)
    finally:
        await connection.aclose()
    assert (first.cached, again.cached) == (False, True)
    assert reranked.cached is False
    assert reranked.citations[0].document_id == "cedar" != first.citations[0].document_id
