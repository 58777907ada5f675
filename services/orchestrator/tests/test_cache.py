"""The caches against a real Redis server: hits, invalidation by collection version, fallbacks, outages."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from rag_common.contracts import ChatCompletionResponse, DocumentIn, IngestRequest, RagQuery
from rag_common.errors import UpstreamUnavailable
from rag_common.redis_pipelined import PipelinedRedis
from rag_devstack.processes import free_port
from rag_devstack.redis_server import RedisServer, start_redis
from rag_orchestrator import ingest as ingest_service
from rag_orchestrator import rag as rag_service
from rag_orchestrator import streaming
from rag_orchestrator.adapters import redis_cache
from rag_orchestrator.adapters.cached_embedder import CachedEmbedder
from rag_orchestrator.adapters.redis_cache import RedisCache
from rag_orchestrator.pipeline import Pipeline

from .fakes import BagOfWordsEmbedder, QuotingGenerator

TEA = DocumentIn(id="tea", text="Green tea is made from unoxidised leaves of Camellia sinensis.")
RAIL = DocumentIn(id="rail", text="The Trans-Siberian railway runs from Moscow to Vladivostok.")
QUESTION = RagQuery(question="What is green tea made from?", collection="c", top_k=1)


@pytest.fixture
async def cached(pipeline: Pipeline, redis_server: RedisServer) -> AsyncIterator[Pipeline]:
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushdb()
    connection = redis_cache.connect(redis_server.url, 0.5)
    cache = RedisCache(connection, ttl_s=60)
    embedder = CachedEmbedder(pipeline.embedder, cache, namespace="test")
    yield dataclasses.replace(pipeline, cache=cache, embedder=embedder)
    await connection.aclose()


async def ingest(pipeline: Pipeline, *documents: DocumentIn) -> None:
    await ingest_service.ingest(IngestRequest(collection="c", documents=list(documents)), pipeline=pipeline)


def generated(pipeline: Pipeline) -> int:
    assert isinstance(pipeline.generator, QuotingGenerator)
    return len(pipeline.generator.requests)


async def test_a_repeated_question_is_answered_from_the_cache(cached: Pipeline) -> None:
    await ingest(cached, TEA, RAIL)
    first = await rag_service.answer(QUESTION, pipeline=cached)
    again = await rag_service.answer(
        QUESTION.model_copy(update={"question": "  what is GREEN tea made from? "}), pipeline=cached
    )
    assert not first.cached
    assert again.cached
    assert again.answer == first.answer
    assert again.citations == first.citations
    assert generated(cached) == 1


async def test_other_settings_are_other_cache_entries(cached: Pipeline) -> None:
    await ingest(cached, TEA, RAIL)
    await rag_service.answer(QUESTION, pipeline=cached)
    other = await rag_service.answer(QUESTION.model_copy(update={"top_k": 2}), pipeline=cached)
    assert not other.cached


async def test_a_deleted_or_changed_collection_never_answers_from_before_the_change(cached: Pipeline) -> None:
    await ingest(cached, TEA, RAIL)
    before = await rag_service.answer(QUESTION, pipeline=cached)
    await ingest(cached, DocumentIn(id="tea", text="Green tea is made from steamed leaves."))
    after = await rag_service.answer(QUESTION, pipeline=cached)
    assert not after.cached
    assert after.citations[0].text != before.citations[0].text


async def test_query_embeddings_are_cached_by_content(cached: Pipeline) -> None:
    await ingest(cached, TEA, RAIL)
    assert isinstance(cached.embedder, CachedEmbedder)
    inner = cached.embedder._inner
    assert isinstance(inner, BagOfWordsEmbedder)
    calls = len(inner.calls)
    await ingest(cached, TEA, RAIL)
    assert len(inner.calls) == calls, "re-ingesting the same text embeds nothing"


async def test_a_fallback_answer_is_never_stored_under_the_requested_model(cached: Pipeline) -> None:
    await ingest(cached, TEA, RAIL)
    assert isinstance(cached.generator, QuotingGenerator)
    original = cached.generator.grounded

    async def via_fallback(request: object) -> ChatCompletionResponse:
        response = await original(request)  # type: ignore[arg-type]
        return response.model_copy(update={"model": "backup-model", "fallback_from": "default"})

    cached.generator.grounded = via_fallback  # type: ignore[method-assign]
    first = await rag_service.answer(QUESTION, pipeline=cached)
    second = await rag_service.answer(QUESTION, pipeline=cached)
    assert first.model == "backup-model"
    assert not second.cached, "the primary's key got nothing from the fallback"


async def test_a_streamed_question_is_stored_and_a_cached_one_is_replayed_as_a_stream(
    cached: Pipeline,
) -> None:
    await ingest(cached, TEA, RAIL)
    streamed = [e async for e in await streaming.answer_stream(QUESTION, pipeline=cached)]
    assert json.loads(streamed[-1].split("data: ")[1])["cached"] is False
    replayed = [e async for e in await streaming.answer_stream(QUESTION, pipeline=cached)]
    done = json.loads(replayed[-1].split("data: ")[1])
    assert done["cached"] is True
    assert replayed[0] == streamed[0], "the same citations event"
    assert (await rag_service.answer(QUESTION, pipeline=cached)).cached


async def test_redis_down_bypasses_the_cache_and_the_question_still_succeeds(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    server = start_redis(free_port(), tmp_path / "redis", tmp_path / "redis.log")
    connection, hot = redis_cache.connect(server.url, 0.2), PipelinedRedis(server.url, 0.2)
    cache = RedisCache(connection, ttl_s=60, hot=hot)
    down = dataclasses.replace(
        pipeline, cache=cache, embedder=CachedEmbedder(pipeline.embedder, cache, namespace="t")
    )
    await ingest(down, TEA, RAIL)
    server.stop()
    answer = await rag_service.answer(QUESTION, pipeline=down)
    assert answer.citations[0].document_id == "tea"
    assert not answer.cached
    with pytest.raises(UpstreamUnavailable) as caught:
        await ingest(down, TEA)
    assert caught.value.service == "redis", "a change the cache cannot hear of is refused"
    await connection.aclose()
    await hot.aclose()


async def test_a_version_seen_before_is_confirmed_in_the_same_round_trip_and_a_bump_elsewhere_holds(
    redis_server: RedisServer,
) -> None:
    """Two replicas: one reads answers under the version it has seen, the other bumps it."""
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushdb()
    connection, hot = redis_cache.connect(redis_server.url, 0.5), PipelinedRedis(redis_server.url, 0.5)
    reader, writer = RedisCache(connection, ttl_s=60, hot=hot), RedisCache(connection, ttl_s=60)
    key_for = lambda version: f"answer:c:v{version}"  # noqa: E731
    try:
        assert await reader.versioned_get("c", key_for) == (0, None)
        await writer.set("answer:c:v0", b"before")
        with redis.Redis.from_url(redis_server.url) as r:
            r.config_resetstat()
            seen = await reader.versioned_get("c", key_for)
            commands = {k.removeprefix("cmdstat_"): v["calls"] for k, v in r.info("commandstats").items()}
        await writer.bump("c")
        after_bump = await reader.versioned_get("c", key_for)
        await writer.set("answer:c:v1", b"after")
        again = await reader.versioned_get("c", key_for)
    finally:
        await connection.aclose()
        await hot.aclose()
    assert seen == (0, b"before")
    assert commands.get("evalsha") == 1, "one round trip: a script reads the version and the value"
    assert commands.get("get") == 2
    assert after_bump == (1, None), "the answer cached under the old version is never returned"
    assert again == (1, b"after")
