"""The semantic answer cache against a real Redis server: similar questions, scopes, invalidation, outages."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
from prometheus_client import REGISTRY

from rag_common.contracts import ChatCompletionResponse, DocumentIn, IngestRequest, RagAnswer, RagQuery
from rag_common.errors import SafetyBlocked
from rag_devstack.processes import free_port
from rag_devstack.redis_server import RedisServer, start_redis
from rag_orchestrator import ingest as ingest_service
from rag_orchestrator import rag as rag_service
from rag_orchestrator import semantic_cache, streaming, tenancy, timing
from rag_orchestrator.adapters import redis_cache
from rag_orchestrator.adapters.cached_embedder import CachedEmbedder
from rag_orchestrator.adapters.redis_cache import RedisCache
from rag_orchestrator.pipeline import Pipeline
from rag_orchestrator.settings import Settings

from .fakes import BagOfWordsEmbedder, QuotingGenerator

TEA = DocumentIn(id="tea", text="Green tea is made from unoxidised leaves of Camellia sinensis.")
RAIL = DocumentIn(id="rail", text="The Trans-Siberian railway runs from Moscow to Vladivostok.")
QUESTION = RagQuery(question="What is green tea made from?", collection="c", top_k=1)
PARAPHRASE = "So what is green tea made from?"
UNRELATED = "Where does the Trans-Siberian railway run?"


def similarity(a: str, b: str) -> float:
    embedder = BagOfWordsEmbedder()
    return sum(x * y for x, y in zip(embedder._vector(a), embedder._vector(b), strict=True))


def asked(question: str, **changes: object) -> RagQuery:
    return QUESTION.model_copy(update={"question": question} | changes)


def configured(pipeline: Pipeline, **changes: object) -> Pipeline:
    return dataclasses.replace(pipeline, settings=pipeline.settings.model_copy(update=changes))


@pytest.fixture
async def cached(pipeline: Pipeline, redis_server: RedisServer) -> AsyncIterator[Pipeline]:
    """The exact and semantic caches on, with a threshold the paraphrase passes and UNRELATED does not."""
    assert similarity(QUESTION.question, PARAPHRASE) > 0.85 > similarity(QUESTION.question, UNRELATED)
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushdb()
    connection = redis_cache.connect(redis_server.url, 0.5)
    cache = RedisCache(connection, ttl_s=60)
    embedder = CachedEmbedder(pipeline.embedder, cache, namespace="test")
    yield configured(
        dataclasses.replace(pipeline, cache=cache, embedder=embedder),
        semantic_cache_enabled=True,
        semantic_cache_threshold=0.85,
    )
    await connection.aclose()


async def ingest(pipeline: Pipeline, *documents: DocumentIn, collection: str = "c") -> None:
    request = IngestRequest(collection=collection, documents=list(documents))
    await ingest_service.ingest(request, pipeline=pipeline)


def generated(pipeline: Pipeline) -> int:
    assert isinstance(pipeline.generator, QuotingGenerator)
    return len(pipeline.generator.requests)


def semantic_lookups(result: str) -> float:
    sample = REGISTRY.get_sample_value(
        "rag_cache_lookups_total", {"cache": semantic_cache.CACHE_NAME, "result": result}
    )
    return sample or 0.0


def scope_lengths(redis_server: RedisServer) -> list[int]:
    with redis.Redis.from_url(redis_server.url) as r:
        return [int(r.llen(key)) for key in r.scan_iter(match="rag:cache:semantic:*")]


async def test_the_semantic_cache_is_off_by_default(cached: Pipeline, redis_server: RedisServer) -> None:
    assert Settings().semantic_cache_enabled is False
    off = configured(cached, semantic_cache_enabled=False)
    await ingest(off, TEA, RAIL)
    await rag_service.answer(QUESTION, pipeline=off)
    again = await rag_service.answer(asked(PARAPHRASE), pipeline=off)
    assert not again.cached
    assert generated(off) == 2
    assert scope_lengths(redis_server) == [], "nothing is indexed while it is off"


async def test_a_paraphrase_above_the_threshold_reuses_the_answer_without_a_second_embedding(
    cached: Pipeline,
) -> None:
    await ingest(cached, TEA, RAIL)
    first = await rag_service.answer(QUESTION, pipeline=cached)
    assert isinstance(cached.embedder, CachedEmbedder)
    inner = cached.embedder._inner
    assert isinstance(inner, BagOfWordsEmbedder)
    embedded, hits = len(inner.calls), semantic_lookups("hit")
    timings = timing.begin()
    similar = await rag_service.answer(asked(PARAPHRASE), pipeline=cached)
    assert (similar.cached, similar.cache) == (True, "semantic")
    assert similar.cache_similarity == pytest.approx(similarity(QUESTION.question, PARAPHRASE), abs=2e-3)
    assert (similar.answer, similar.citations) == (first.answer, first.citations)
    assert generated(cached) == 1
    assert inner.calls[embedded:] == [[PARAPHRASE]], "the paraphrase is embedded once, for both uses"
    assert semantic_lookups("hit") == hits + 1
    assert "semantic_cache" in timings.milliseconds()


async def test_an_exact_repeat_is_served_by_the_exact_cache(cached: Pipeline) -> None:
    await ingest(cached, TEA, RAIL)
    await rag_service.answer(QUESTION, pipeline=cached)
    again = await rag_service.answer(QUESTION, pipeline=cached)
    assert (again.cached, again.cache, again.cache_similarity) == (True, "exact", None)


async def test_an_unrelated_question_misses(cached: Pipeline) -> None:
    await ingest(cached, TEA, RAIL)
    await rag_service.answer(QUESTION, pipeline=cached)
    misses = semantic_lookups("miss")
    other = await rag_service.answer(asked(UNRELATED), pipeline=cached)
    assert not other.cached
    assert other.citations[0].document_id == "rail"
    assert semantic_lookups("miss") == misses + 1


@pytest.mark.parametrize(("margin", "hit"), [(-0.01, True), (0.01, False)])
async def test_the_threshold_decides(cached: Pipeline, margin: float, hit: bool) -> None:
    threshold = similarity(QUESTION.question, PARAPHRASE) + margin
    tuned = configured(cached, semantic_cache_threshold=threshold)
    await ingest(tuned, TEA, RAIL)
    await rag_service.answer(QUESTION, pipeline=tuned)
    assert (await rag_service.answer(asked(PARAPHRASE), pipeline=tuned)).cached is hit


async def test_another_tenant_never_gets_a_similar_answer(cached: Pipeline) -> None:
    acme, other = tenancy.physical("acme", "c"), tenancy.physical("other", "c")
    await ingest(cached, TEA, RAIL, collection=acme)
    await ingest(cached, TEA, RAIL, collection=other)
    await rag_service.answer(QUESTION.model_copy(update={"collection": acme}), pipeline=cached)
    theirs = await rag_service.answer(asked(PARAPHRASE, collection=other), pipeline=cached)
    ours = await rag_service.answer(asked(PARAPHRASE, collection=acme), pipeline=cached)
    assert (theirs.cached, ours.cached) == (False, True)


async def test_other_settings_never_get_a_similar_answer(cached: Pipeline) -> None:
    await ingest(cached, TEA, RAIL)
    await rag_service.answer(QUESTION, pipeline=cached)
    for changed in ({"top_k": 2}, {"max_tokens": 64}, {"temperature": 0.9}, {"filter": {"lang": "en"}}):
        assert not (await rag_service.answer(asked(PARAPHRASE, **changed), pipeline=cached)).cached, changed
    other_prompt = configured(cached, prompt_version="rag_v2")
    assert not (await rag_service.answer(asked(PARAPHRASE), pipeline=other_prompt)).cached


async def test_a_changed_collection_never_answers_a_similar_question_from_before(cached: Pipeline) -> None:
    await ingest(cached, TEA, RAIL)
    before = await rag_service.answer(QUESTION, pipeline=cached)
    await ingest(cached, DocumentIn(id="tea", text="Green tea is made from steamed leaves."))
    after = await rag_service.answer(asked(PARAPHRASE), pipeline=cached)
    assert not after.cached
    assert after.citations[0].text != before.citations[0].text


async def test_a_similar_question_still_passes_its_own_input_check(cached: Pipeline) -> None:
    await ingest(cached, TEA, RAIL)
    await rag_service.answer(QUESTION, pipeline=cached)
    with pytest.raises(SafetyBlocked):
        await rag_service.answer(asked("What is forbidden green tea made from?"), pipeline=cached)
    similar = await rag_service.answer(asked(PARAPHRASE), pipeline=cached)
    assert similar.cache == "semantic"
    assert similar.safety["input"] == "allow", "the new question's verdict, not the cached one's"


async def test_a_question_with_redacted_pii_is_never_answered_or_offered_by_similarity(
    cached: Pipeline, redis_server: RedisServer
) -> None:
    await ingest(cached, TEA, RAIL)
    await rag_service.answer(QUESTION, pipeline=cached)
    indexed = scope_lengths(redis_server)
    redacted = await rag_service.answer(asked("What is green tea made from? me@example.com"), pipeline=cached)
    assert (redacted.cached, redacted.safety["input"]) == (False, "redact")
    assert scope_lengths(redis_server) == indexed, "a question about someone's data is not indexed"


async def test_a_fallback_answer_is_only_similar_for_the_fallback_model(cached: Pipeline) -> None:
    await ingest(cached, TEA, RAIL)
    assert isinstance(cached.generator, QuotingGenerator)
    original = cached.generator.grounded

    async def via_fallback(request: object) -> ChatCompletionResponse:
        response = await original(request)  # type: ignore[arg-type]
        return response.model_copy(update={"model": "backup-model", "fallback_from": "default"})

    cached.generator.grounded = via_fallback  # type: ignore[method-assign]
    await rag_service.answer(QUESTION, pipeline=cached)
    assert not (await rag_service.answer(asked(PARAPHRASE), pipeline=cached)).cached
    backup = configured(cached, llm_model="backup-model")
    assert (await rag_service.answer(asked("And what is green tea made from?"), pipeline=backup)).cached


async def test_each_scope_keeps_only_the_newest_entries(cached: Pipeline, redis_server: RedisServer) -> None:
    bounded = configured(cached, semantic_cache_max_entries=3)
    await ingest(bounded, TEA, RAIL)
    questions = [
        "What is green tea made from?",
        "Which leaves give green tea?",
        "Where does the railway run?",
        "Which city does the railway start in?",
        "Where does the Trans-Siberian end?",
    ]
    for question in questions:
        await rag_service.answer(asked(question), pipeline=bounded)
    assert scope_lengths(redis_server) == [3]
    forgotten = await rag_service.answer(asked("So what is green tea made from?"), pipeline=bounded)
    kept = await rag_service.answer(asked("So where does the Trans-Siberian end?"), pipeline=bounded)
    assert (forgotten.cached, kept.cache) == (False, "semantic")


def test_entries_of_another_dimension_are_skipped() -> None:
    entries = [
        ("answer:old", semantic_cache.encode([1.0, 0.0])),
        ("answer:new", semantic_cache.encode([0.0, 1, 0])),
    ]
    match = semantic_cache.best_match(entries, [0.0, 2.0, 0.0])
    assert match is not None
    assert (match.key, match.similarity) == ("answer:new", pytest.approx(1.0, abs=1e-3))
    assert semantic_cache.best_match(entries[:1], [1.0, 0.0, 0.0]) is None


def test_questions_are_compared_by_cosine_whatever_their_length() -> None:
    match = semantic_cache.best_match([("answer:k", semantic_cache.encode([3.0, 4.0]))], [0.6, 0.8])
    assert match is not None
    assert match.similarity == pytest.approx(1.0, abs=1e-3)


async def test_redis_down_bypasses_the_semantic_cache_and_the_question_still_succeeds(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    server = start_redis(free_port(), tmp_path / "redis", tmp_path / "redis.log")
    connection = redis_cache.connect(server.url, 0.2)
    cache = RedisCache(connection, ttl_s=60)
    down = configured(
        dataclasses.replace(
            pipeline, cache=cache, embedder=CachedEmbedder(pipeline.embedder, cache, namespace="t")
        ),
        semantic_cache_enabled=True,
        semantic_cache_threshold=0.5,
    )
    await ingest(down, TEA, RAIL)
    await rag_service.answer(QUESTION, pipeline=down)
    server.stop()
    answer = await rag_service.answer(asked(PARAPHRASE), pipeline=down)
    assert (answer.cached, answer.citations[0].document_id) == (False, "tea")
    assert list(await cache.semantic_entries("semantic:any")) == []
    await cache.add_semantic_entry("semantic:any", "answer:x", semantic_cache.encode([1.0]), max_entries=3)
    await connection.aclose()


async def test_a_streamed_similar_question_is_replayed_from_the_cache(cached: Pipeline) -> None:
    await ingest(cached, TEA, RAIL)
    streamed = [e async for e in await streaming.answer_stream(QUESTION, pipeline=cached)]
    replayed = [e async for e in await streaming.answer_stream(asked(PARAPHRASE), pipeline=cached)]
    done = json.loads(replayed[-1].split("data: ")[1])
    assert (done["cached"], done["cache"]) == (True, "semantic")
    assert done["cache_similarity"] == pytest.approx(similarity(QUESTION.question, PARAPHRASE), abs=2e-3)
    assert replayed[0] == streamed[0], "the same citations event"
    assert generated(cached) == 1
    answer = await rag_service.answer(asked("Now what is green tea made from?"), pipeline=cached)
    assert isinstance(answer, RagAnswer)
    assert answer.cache == "semantic", "a streamed answer is indexed for similar questions too"


async def test_a_question_indexed_again_is_kept_once(cached: Pipeline) -> None:
    assert isinstance(cached.cache, RedisCache)
    vector = semantic_cache.encode([1.0, 0.0])
    for _ in range(2):
        await cached.cache.add_semantic_entry("semantic:s", "answer:k", vector, max_entries=5)
    assert list(await cached.cache.semantic_entries("semantic:s")) == [("answer:k", vector)]
