"""The RAG workflow: check, embed and retrieve, generate, check again, cite."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rag_common.contracts import (
    ChatCompletionResponse,
    ChatMessage,
    Citation,
    ContextPassage,
    FilterValue,
    GroundedCompletionRequest,
    Grounding,
    RagAnswer,
    RagQuery,
    SafetyVerdict,
    SearchHit,
    SearchRequest,
    SearchResponse,
)

from . import cache, deanonymise, guard, semantic_cache, timing
from . import conversation as conversation_service
from .concurrency import both
from .pipeline import Pipeline
from .ports import Reranker
from .settings import Settings

NO_CONTEXT_ANSWER = "I could not find anything relevant to this question in the collection."
WITHHELD_ANSWER = "The answer was withheld by the output safety check."
RESERVED_PAYLOAD_KEYS = frozenset({"document_id", "chunk_index"})

AnswerKey = Callable[[str], str]


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


@dataclass(frozen=True, slots=True)
class Understood:
    """The question's input verdict and its embedding."""

    verdict: SafetyVerdict
    vector: list[float]

    @property
    def semantic_vector(self) -> list[float] | None:
        """None for a question whose PII was redacted: two such questions may differ only in whose
        data they ask about, so a similar one's answer is never reused, nor is this one offered."""
        return None if self.verdict.verdict == "redact" else self.vector


async def understand(query: RagQuery, pipeline: Pipeline) -> Understood:
    """Input safety runs concurrently with the query embedding."""
    verdict, vectors = await both(
        check_input(pipeline, query.question),
        timing.timed(
            "embed",
            pipeline.embedder.embed([query.question]),
            service="embedding",
            timeout_s=pipeline.settings.embed_timeout_s,
        ),
    )
    return Understood(verdict, vectors[0])


async def retrieve(
    query: RagQuery, pipeline: Pipeline, version: int | None = None, understood: Understood | None = None
) -> Retrieved:
    """Retrieval starts once the question has passed its input check and is embedded (`understand`)."""
    settings = pipeline.settings
    understood = understood or await understand(query, pipeline)
    verdict = understood.verdict
    search = SearchRequest(
        vector=understood.vector,
        text=query.question,
        mode=settings.retrieval_mode,
        top_k=max(query.top_k, settings.rerank_candidates) if pipeline.reranker else query.top_k,
        filter=payload_filter(query.filter),
    )
    async with timing.stage("retrieve", service="retrieval", timeout_s=settings.retrieval_timeout_s):
        hits = await _search(pipeline, query.collection, search, version)
    if pipeline.reranker is not None and hits:
        async with timing.stage("rerank", service="embedding", timeout_s=settings.embed_timeout_s):
            hits = await _rerank(pipeline.reranker, query, hits)
    async with timing.stage("screen"):
        citations, dropped = await guard.screen(
            pipeline, [citation_from(i, hit) for i, hit in enumerate(hits, start=1)]
        )
    return Retrieved(
        question=verdict.text, citations=citations, input_verdict=verdict.verdict, dropped=dropped
    )


async def check_input(pipeline: Pipeline, text: str) -> SafetyVerdict:
    return await timing.timed("safety_in", guard.check(pipeline, text, "input"))


async def generate(pipeline: Pipeline, request: GroundedCompletionRequest) -> ChatCompletionResponse:
    timeout_s = pipeline.settings.llm_timeout_s
    return await timing.timed(
        "generate", pipeline.generator.grounded(request), service="llm", timeout_s=timeout_s
    )


async def check_output(
    pipeline: Pipeline, text: str, citations: list[Citation]
) -> tuple[SafetyVerdict, Grounding | None]:
    """The output policy and the grounding score, concurrently; each reports its own time."""
    return await both(
        timing.timed("safety_out", guard.check(pipeline, text, "output")),
        timing.timed("ground", guard.ground(pipeline, text, citations)),
    )


async def _rerank(reranker: Reranker, query: RagQuery, hits: list[SearchHit]) -> list[SearchHit]:
    texts = [str(hit.payload.get("text", "")) for hit in hits]
    order = await reranker.rerank(query.question, texts, top_n=query.top_k)
    return [hits[index] for index in order]


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


def _answer_key(
    query: RagQuery, pipeline: Pipeline, version: int, make: Callable[..., str] = cache.answer_key
) -> AnswerKey:
    settings = pipeline.settings
    return lambda model: make(
        query,
        version=version,
        model=model,
        prompt_version=settings.prompt_version,
        mode=settings.retrieval_mode + ("+rerank" if pipeline.reranker else ""),
    )


@dataclass(frozen=True, slots=True)
class Lookup:
    """The answer cache for one query: its collection version, key and semantic scope makers (None
    while the cache is off or away) and the cached answer, if any."""

    version: int | None = None
    key_for: AnswerKey | None = None
    hit: RagAnswer | None = None
    scope_for: AnswerKey | None = None
    requested: str = cache.DEFAULT_MODEL


async def lookup(query: RagQuery, pipeline: Pipeline) -> Lookup:
    async with timing.stage("cache"):
        requested = cache.requested_model(pipeline.settings.llm_model)
        version, raw = await pipeline.cache.versioned_get(
            query.collection, lambda version: _answer_key(query, pipeline, version)(requested)
        )
        if version is None:
            return Lookup()
        key_for = _answer_key(query, pipeline, version)
        hit = cache.answer_from(raw)
        scope_for = _answer_key(query, pipeline, version, cache.semantic_scope)
        return Lookup(version, key_for, hit, scope_for, requested)


async def similar_answer(found: Lookup, understood: Understood, pipeline: Pipeline) -> RagAnswer | None:
    """A semantic hit, after the new question's own input check; its verdict replaces the cached one."""
    if found.scope_for is None or understood.semantic_vector is None:
        return None
    hit = await semantic_cache.lookup(pipeline, found.scope_for(found.requested), understood.semantic_vector)
    if hit is None:
        return None
    return hit.model_copy(update={"safety": hit.safety | {"input": understood.verdict.verdict}})


async def store_answer(
    found: Lookup, model: str, result: RagAnswer, vector: list[float] | None, pipeline: Pipeline
) -> None:
    """The answer under its exact key for `model` (a fallback's under the fallback model), and its
    question in that model's semantic scope."""
    if found.key_for is None or found.scope_for is None:
        return
    key = found.key_for(model)
    async with timing.stage("cache"):
        await pipeline.cache.set(key, result.model_dump_json().encode())
        if vector is not None:
            await semantic_cache.remember(pipeline, found.scope_for(model), key, vector)


async def answer(query: RagQuery, *, pipeline: Pipeline, restore_pii: bool = False) -> RagAnswer:
    """A follow-up is made standalone first (with a `session_id`); then the exact-answer cache; a miss
    runs the workflow and stores its answer. The cache and the conversation get the answer with a
    reversible redaction's placeholders; `restore_pii` (only for an answer going straight back to
    its asker, never one that is stored) puts the asker's values back in the returned copy."""
    query, conversation = await conversation_service.recall(query, pipeline)
    with deanonymise.request_scope() as pseudonyms:
        result = await _answer(query, pipeline)
        if restore_pii:
            await guard.recall_pseudonyms(pipeline, query.question, result.answer)
    await conversation_service.remember(conversation, result.answer, pipeline)
    return conversation.annotate(pseudonyms.restore_answer(result) if restore_pii else result)


async def _answer(query: RagQuery, pipeline: Pipeline) -> RagAnswer:
    found = await lookup(query, pipeline)
    if found.hit is not None:
        return found.hit
    understood = await understand(query, pipeline)
    if (similar := await similar_answer(found, understood, pipeline)) is not None:
        return similar
    result, completion = await _answer_fresh(query, pipeline, found.version, understood)
    model = cache.stored_model(found.requested, completion)
    await store_answer(found, model, result, understood.semantic_vector, pipeline)
    return result


async def _answer_fresh(
    query: RagQuery, pipeline: Pipeline, version: int | None, understood: Understood | None = None
) -> tuple[RagAnswer, ChatCompletionResponse | None]:
    retrieved = await retrieve(query, pipeline, version, understood)
    if not retrieved.citations:
        no_context = RagAnswer(
            answer=NO_CONTEXT_ANSWER, citations=[], model="none", safety={"input": retrieved.input_verdict}
        )
        return no_context, None
    completion = await generate(pipeline, grounded_request(query, retrieved, pipeline.settings))
    text = completion.choices[0].message.content
    output, grounding = await check_output(pipeline, text, retrieved.citations)
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
