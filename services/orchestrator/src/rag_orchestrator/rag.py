"""The RAG workflow: check, embed and retrieve, generate, check again, cite."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from opentelemetry import trace

from rag_common.contracts import (
    ChatMessage,
    Citation,
    ContextPassage,
    FilterValue,
    GroundedCompletionRequest,
    RagAnswer,
    RagQuery,
    SafetyVerdict,
    SearchHit,
    SearchRequest,
    Usage,
)
from rag_common.errors import SafetyBlocked, ServiceError, problem_body

from .concurrency import both
from .pipeline import Pipeline

NO_CONTEXT_ANSWER = "I could not find anything relevant to this question in the collection."
WITHHELD_ANSWER = "The answer was withheld by the output safety check."
RESERVED_PAYLOAD_KEYS = frozenset({"document_id", "chunk_index"})

tracer = trace.get_tracer(__name__)


@dataclass(frozen=True, slots=True)
class Retrieved:
    question: str
    citations: list[Citation]
    input_verdict: str


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


async def check(pipeline: Pipeline, text: str, direction: str) -> SafetyVerdict:
    if not pipeline.settings.safety_enabled:
        return SafetyVerdict(verdict="allow", text=text)
    with tracer.start_as_current_span(f"safety.{direction}"):
        verdict = await pipeline.safety.check(text, direction)
    if verdict.verdict == "block" and direction == "input":
        raise SafetyBlocked(verdict.reasons, "question")
    return verdict


async def retrieve(query: RagQuery, pipeline: Pipeline) -> Retrieved:
    """Input safety runs concurrently with the query embedding; retrieval starts once both pass."""
    verdict, vectors = await both(
        check(pipeline, query.question, "input"), pipeline.embedder.embed([query.question])
    )
    search = SearchRequest(
        vector=vectors[0],
        text=query.question,
        mode=pipeline.settings.retrieval_mode,
        top_k=query.top_k,
        filter=payload_filter(query.filter),
    )
    with tracer.start_as_current_span("retrieval.search"):
        hits = await pipeline.retriever.search(query.collection, search)
    citations = [citation_from(i, hit) for i, hit in enumerate(hits, start=1)]
    return Retrieved(question=verdict.text, citations=citations, input_verdict=verdict.verdict)


def grounded_request(
    query: RagQuery, retrieved: Retrieved, history: list[ChatMessage] | None = None
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
    )


async def answer(query: RagQuery, *, pipeline: Pipeline) -> RagAnswer:
    retrieved = await retrieve(query, pipeline)
    if not retrieved.citations:
        return RagAnswer(
            answer=NO_CONTEXT_ANSWER, citations=[], model="none", safety={"input": retrieved.input_verdict}
        )
    completion = await pipeline.generator.grounded(grounded_request(query, retrieved))
    text = completion.choices[0].message.content
    output = await check(pipeline, text, "output")
    return RagAnswer(
        answer=WITHHELD_ANSWER if output.verdict == "block" else output.text,
        citations=retrieved.citations,
        model=completion.model,
        usage=completion.usage,
        safety={"input": retrieved.input_verdict, "output": output.verdict},
    )


def sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def answer_stream(query: RagQuery, *, pipeline: Pipeline) -> AsyncIterator[str]:
    """Retrieval and the first generation step run before this returns, so their errors keep their status."""
    retrieved = await retrieve(query, pipeline)
    citations = [c.model_dump() for c in retrieved.citations]
    if not retrieved.citations:
        return _fixed_stream(citations, NO_CONTEXT_ANSWER, retrieved.input_verdict)
    chunks = await pipeline.generator.grounded_stream(grounded_request(query, retrieved))
    return _generation_stream(pipeline, citations, chunks, retrieved.input_verdict)


async def _fixed_stream(
    citations: list[dict[str, object]], text: str, input_verdict: str
) -> AsyncIterator[str]:
    yield sse("citations", {"citations": citations})
    yield sse("delta", {"content": text})
    yield sse("done", {"model": "none", "usage": Usage().model_dump(), "safety": {"input": input_verdict}})


async def _generation_stream(
    pipeline: Pipeline, citations: list[dict[str, object]], chunks: AsyncIterator, input_verdict: str
) -> AsyncIterator[str]:
    yield sse("citations", {"citations": citations})
    parts: list[str] = []
    model, usage, finish_reason = "", Usage(), "stop"
    try:
        async for chunk in chunks:
            model = chunk.model
            usage = chunk.usage or usage
            for choice in chunk.choices:
                finish_reason = choice.finish_reason or finish_reason
                if choice.delta.content:
                    parts.append(choice.delta.content)
                    yield sse("delta", {"content": choice.delta.content})
        output = await check(pipeline, "".join(parts), "output")
    except ServiceError as exc:
        yield sse("error", _problem(exc))
        return
    safety = {"input": input_verdict, "output": output.verdict}
    yield sse(
        "done",
        {"model": model, "usage": usage.model_dump(), "finish_reason": finish_reason, "safety": safety},
    )


def _problem(exc: ServiceError) -> dict[str, object]:
    return problem_body(
        status=exc.status_code,
        title=exc.title,
        detail=exc.detail,
        type_slug=exc.type_slug,
        instance="",
        **exc.extra,
    )
