"""The RAG workflow as a server-sent event stream: citations first, then deltas, then done."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

from rag_common.contracts import ChatCompletionChunk, RagAnswer, RagQuery, Usage
from rag_common.errors import ServiceError, problem_body

from . import cache, guard
from .pipeline import Pipeline
from .rag import NO_CONTEXT_ANSWER, _answer_key, grounded_request, retrieve


def sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def answer_stream(query: RagQuery, *, pipeline: Pipeline) -> AsyncIterator[str]:
    """Retrieval and the first generation step run before this returns, so their errors keep their status.

    A cached answer is replayed as a stream; a fresh one is stored once the stream completes.
    """
    version = await pipeline.cache.collection_version(query.collection)
    key_for = _answer_key(query, pipeline, version) if version is not None else None
    requested = cache.requested_model(pipeline.settings.llm_model)
    if key_for and (hit := await cache.cached_answer(pipeline.cache, key_for(requested))) is not None:
        return _replay(hit)
    retrieved = await retrieve(query, pipeline, version)
    if not retrieved.citations:
        empty = RagAnswer(
            answer=NO_CONTEXT_ANSWER, citations=[], model="none", safety={"input": retrieved.input_verdict}
        )
        return _replay(empty)
    chunks = await pipeline.generator.grounded_stream(grounded_request(query, retrieved, pipeline.settings))
    partial = RagAnswer(
        answer="",
        citations=retrieved.citations,
        model="",
        safety={"input": retrieved.input_verdict},
        passages_dropped=retrieved.dropped,
    )
    store = _store_with(pipeline, key_for, requested) if key_for else None
    return _generation_stream(pipeline, partial, chunks, store)


Store = Callable[[RagAnswer, str | None], object]


def _store_with(pipeline: Pipeline, key_for: Callable[[str], str], requested: str) -> Store:
    async def store(result: RagAnswer, fallback_from: str | None) -> None:
        key = key_for(result.model) if fallback_from else key_for(requested)
        await pipeline.cache.set(key, result.model_dump_json().encode())

    return store


async def _replay(result: RagAnswer) -> AsyncIterator[str]:
    citations = [c.model_dump() for c in result.citations]
    yield sse("citations", {"citations": citations, "passages_dropped": result.passages_dropped})
    yield sse("delta", {"content": result.answer})
    done = {"model": result.model, "usage": result.usage.model_dump(), "finish_reason": "stop"}
    grounding = result.grounding.model_dump() if result.grounding else None
    yield sse("done", done | {"safety": result.safety, "grounding": grounding, "cached": result.cached})


async def _generation_stream(
    pipeline: Pipeline, partial: RagAnswer, chunks: AsyncIterator[ChatCompletionChunk], store: Store | None
) -> AsyncIterator[str]:
    """Text goes out a checked window at a time (`guard.StreamGuard`); a blocked window ends the stream."""
    citations = [c.model_dump() for c in partial.citations]
    yield sse("citations", {"citations": citations, "passages_dropped": partial.passages_dropped})
    window = guard.StreamGuard(pipeline, max_chars=pipeline.settings.stream_guard_max_chars)
    model, usage, finish_reason, fallback_from = "", Usage(), "stop", None
    try:
        async for chunk in chunks:
            model, usage = chunk.model, chunk.usage or usage
            fallback_from = fallback_from or (chunk.model_extra or {}).get("fallback_from")
            for choice in chunk.choices:
                finish_reason = choice.finish_reason or finish_reason
                if choice.delta.content and (released := await window.feed(choice.delta.content)):
                    yield sse("delta", {"content": released})
        if released := await window.flush():
            yield sse("delta", {"content": released})
        text = "".join(window.released)
        grounding = await guard.ground(pipeline, text, partial.citations)
    except guard.OutputBlocked as blocked:
        safety = partial.safety | {"output": "block"}
        ended = {"model": model, "usage": usage.model_dump(), "finish_reason": "content_filter"}
        yield sse("done", ended | {"safety": safety, "reasons": blocked.reasons, "cached": False})
        return
    except ServiceError as exc:
        yield sse("error", _problem(exc))
        return
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    safety = partial.safety | {"output": window.verdict}
    if store is not None:
        result = partial.model_copy(
            update={"answer": text, "model": model, "usage": usage, "safety": safety, "grounding": grounding}
        )
        await store(result, fallback_from)
    done = {"model": model, "usage": usage.model_dump(), "finish_reason": finish_reason, "safety": safety}
    extras = {"grounding": grounding.model_dump() if grounding else None, "cached": False}
    yield sse("done", done | extras)


def _problem(exc: ServiceError) -> dict[str, object]:
    return problem_body(
        status=exc.status_code,
        title=exc.title,
        detail=exc.detail,
        type_slug=exc.type_slug,
        instance="",
        **exc.extra,
    )
