"""The RAG workflow: check, embed and retrieve, generate, check again, cite."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry import trace

from rag_common.contracts import (
    ChatCompletionResponse,
    ChatMessage,
    Citation,
    ContextPassage,
    FilterValue,
    GroundedCompletionRequest,
    RagAnswer,
    RagQuery,
    SearchHit,
    SearchRequest,
    SearchResponse,
)

from . import cache, guard
from .concurrency import both
from .pipeline import Pipeline
from .settings import Settings

NO_CONTEXT_ANSWER = "I could not find anything relevant to this question in the collection."
WITHHELD_ANSWER = "The answer was withheld by the output safety check."
RESERVED_PAYLOAD_KEYS = frozenset({"document_id", "chunk_index"})

tracer = trace.get_tracer(__name__)


@dataclass(frozen=True, slots=True)
class Retrieved:
    question: str
    citations: list[Citation]
    input_verdict: str
    dropped: int = 0


def payload_filter(conditions: dict[str, FilterValue] | None) -> dict[str, FilterValue] | None:
    """User filters address document metadata; ids are top-level payload fields."""
    if not conditions:
        return None
    return {(k if k in RESERVED_PAYLOAD_KEYS else f"metadata.{k}"): v for k, v in conditions.items()}


def citation_from(index: int, hit: SearchHit) -> Citation:
    payload = hit.payload
    return Citation(
        index=index,
        document_id=str(payload.get("document_id", "")),
        chunk_index=int(payload.get("chunk_index", 0)),
        score=hit.score,
        text=str(payload.get("text", "")),
        start=int(payload.get("start", 0)),
        end=int(payload.get("end", 0)),
        metadata=dict(payload.get("metadata") or {}),
    )


async def retrieve(query: RagQuery, pipeline: Pipeline, version: int | None = None) -> Retrieved:
    """Input safety runs concurrently with the query embedding; retrieval starts once both pass."""
    verdict, vectors = await both(
        guard.check(pipeline, query.question, "input"), pipeline.embedder.embed([query.question])
    )
    search = SearchRequest(
        vector=vectors[0],
        text=query.question,
        mode=pipeline.settings.retrieval_mode,
        top_k=query.top_k,
        filter=payload_filter(query.filter),
    )
    with tracer.start_as_current_span("retrieval.search"):
        hits = await _search(pipeline, query.collection, search, version)
    citations, dropped = await guard.screen(
        pipeline, [citation_from(i, hit) for i, hit in enumerate(hits, start=1)]
    )
    return Retrieved(
        question=verdict.text, citations=citations, input_verdict=verdict.verdict, dropped=dropped
    )


async def _search(
    pipeline: Pipeline, collection: str, search: SearchRequest, version: int | None
) -> list[SearchHit]:
    if version is None:
        return await pipeline.retriever.search(collection, search)
    key = cache.search_key(collection, version, search)
    if (found := await cache.cached_search(pipeline.cache, key)) is not None:
        return found.hits
    hits = await pipeline.retriever.search(collection, search)
    await pipeline.cache.set(key, SearchResponse(hits=hits).model_dump_json().encode())
    return hits


def grounded_request(
    query: RagQuery, retrieved: Retrieved, settings: Settings, history: list[ChatMessage] | None = None
) -> GroundedCompletionRequest:
    contexts = [
        ContextPassage(index=c.index, text=c.text, source=str(c.metadata.get("source") or c.document_id))
        for c in retrieved.citations
    ]
    return GroundedCompletionRequest(
        question=retrieved.question,
        contexts=contexts,
        history=history or [],
        max_tokens=query.max_tokens,
        temperature=query.temperature,
        model=settings.llm_model,
        prompt_version=settings.prompt_version,
    )


def _answer_key(query: RagQuery, pipeline: Pipeline, version: int) -> Callable[[str], str]:
    settings = pipeline.settings
    return lambda model: cache.answer_key(
        query,
        version=version,
        model=model,
        prompt_version=settings.prompt_version,
        mode=settings.retrieval_mode,
    )


async def answer(query: RagQuery, *, pipeline: Pipeline) -> RagAnswer:
    """The exact-answer cache first; a miss runs the workflow and stores its answer."""
    version = await pipeline.cache.collection_version(query.collection)
    if version is None:
        result, _ = await _answer_fresh(query, pipeline, None)
        return result
    key_for = _answer_key(query, pipeline, version)
    requested = cache.requested_model(pipeline.settings.llm_model)
    if (hit := await cache.cached_answer(pipeline.cache, key_for(requested))) is not None:
        return hit
    result, completion = await _answer_fresh(query, pipeline, version)
    key = cache.store_key(key_for, requested, completion) if completion else key_for(requested)
    await pipeline.cache.set(key, result.model_dump_json().encode())
    return result


async def _answer_fresh(
    query: RagQuery, pipeline: Pipeline, version: int | None
) -> tuple[RagAnswer, ChatCompletionResponse | None]:
    retrieved = await retrieve(query, pipeline, version)
    if not retrieved.citations:
        no_context = RagAnswer(
            answer=NO_CONTEXT_ANSWER, citations=[], model="none", safety={"input": retrieved.input_verdict}
        )
        return no_context, None
    completion = await pipeline.generator.grounded(grounded_request(query, retrieved, pipeline.settings))
    text = completion.choices[0].message.content
    output, grounding = await both(
        guard.check(pipeline, text, "output"), guard.ground(pipeline, text, retrieved.citations)
    )
    result = RagAnswer(
        answer=WITHHELD_ANSWER if output.verdict == "block" else output.text,
        citations=retrieved.citations,
        model=completion.model,
        usage=completion.usage,
        safety={"input": retrieved.input_verdict, "output": output.verdict},
        grounding=grounding,
        passages_dropped=retrieved.dropped,
    )
    return result, completion
