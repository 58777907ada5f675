"""The RAG workflow as a server-sent event stream: citations first, then deltas, then done."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from rag_common.contracts import ChatCompletionChunk, RagAnswer, RagQuery, Usage
from rag_common.errors import ServiceError, problem_body

from . import conversation as conversation_service
from . import deanonymise, guard, timing
from .conversation import Conversation
from .pipeline import Pipeline
from .rag import (
    NO_CONTEXT_ANSWER,
    WITHHELD_ANSWER,
    Lookup,
    grounded_request,
    lookup,
    retrieve,
    similar_answer,
    store_answer,
    understand,
)
from .timing import StageTimings


def sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@dataclass(frozen=True, slots=True)
class Ending:
    """What happens once a stream has been answered: the cache, the conversation, the timings."""

    pipeline: Pipeline
    found: Lookup
    conversation: Conversation
    timings: StageTimings
    vector: list[float] | None = None

    async def store(self, result: RagAnswer, fallback_from: str | None) -> None:
        """A fallback's answer goes under the fallback model's key, never the requested model's."""
        model = result.model if fallback_from else self.found.requested
        await store_answer(self.found, model, result, self.vector, self.pipeline)

    async def remember(self, answer: str) -> None:
        await conversation_service.remember(self.conversation, answer, self.pipeline)

    def extras(self) -> dict[str, object]:
        """The `done` event's conversation fields and every stage's milliseconds, `total` included."""
        return self.conversation.fields() | {"timings": self.timings.milliseconds()}


async def answer_stream(query: RagQuery, *, pipeline: Pipeline) -> AsyncIterator[str]:
    """The events, with a reversible redaction's placeholders restored for this caller (`deanonymise`)."""
    with deanonymise.request_scope() as pseudonyms:
        events = await _answer_stream(query, pipeline)
    return deanonymise.restored_events(events, pseudonyms)


async def _answer_stream(query: RagQuery, pipeline: Pipeline) -> AsyncIterator[str]:
    """Retrieval and the first generation step run before this returns, so their errors keep their status.

    A cached answer is replayed as a stream; a fresh one is stored once the stream completes.
    """
    query, conversation = await conversation_service.recall(query, pipeline)
    found = await lookup(query, pipeline)
    ending = Ending(pipeline, found, conversation, timing.current())
    if found.hit is not None:
        await guard.recall_pseudonyms(pipeline, query.question, found.hit.answer)
        await ending.remember(found.hit.answer)
        return _replay(found.hit, ending)
    understood = await understand(query, pipeline)
    if (similar := await similar_answer(found, understood, pipeline)) is not None:
        await ending.remember(similar.answer)
        return _replay(similar, ending)
    ending = dataclasses.replace(ending, vector=understood.semantic_vector)
    retrieved = await retrieve(query, pipeline, found.version, understood)
    if not retrieved.citations:
        empty = RagAnswer(
            answer=NO_CONTEXT_ANSWER, citations=[], model="none", safety={"input": retrieved.input_verdict}
        )
        await ending.remember(empty.answer)
        return _replay(empty, ending)
    request = grounded_request(query, retrieved, pipeline.settings)
    chunks = await timing.timed(
        "generate",
        pipeline.generator.grounded_stream(request),
        service="llm",
        timeout_s=pipeline.settings.llm_timeout_s,
    )
    partial = RagAnswer(
        answer="",
        citations=retrieved.citations,
        model="",
        safety={"input": retrieved.input_verdict},
        passages_dropped=retrieved.dropped,
    )
    return _generation_stream(pipeline, partial, chunks, ending)


async def _replay(result: RagAnswer, ending: Ending) -> AsyncIterator[str]:
    citations = [c.model_dump() for c in result.citations]
    yield sse("citations", {"citations": citations, "passages_dropped": result.passages_dropped})
    yield sse("delta", {"content": result.answer})
    done = {"model": result.model, "usage": result.usage.model_dump(), "finish_reason": "stop"}
    grounding = result.grounding.model_dump() if result.grounding else None
    served = {"cached": result.cached, "cache": result.cache, "cache_similarity": result.cache_similarity}
    extras = {"safety": result.safety, "grounding": grounding} | served | ending.extras()
    yield sse("done", done | extras)


async def _generation_stream(
    pipeline: Pipeline, partial: RagAnswer, chunks: AsyncIterator[ChatCompletionChunk], ending: Ending
) -> AsyncIterator[str]:
    """Text goes out a checked window at a time (`guard.StreamGuard`); a blocked window ends the stream.

    The time from the first event to the last delta is the `stream` stage (generation and the
    windows' output checks, interleaved); no span stays open across the yields.
    """
    started = time.perf_counter()
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
        ending.timings.add("stream", time.perf_counter() - started)
        text = "".join(window.released)
        grounding = await timing.timed("ground", guard.ground(pipeline, text, partial.citations))
    except guard.OutputBlocked as blocked:
        ending.timings.add("stream", time.perf_counter() - started)
        await ending.remember(WITHHELD_ANSWER)
        safety = partial.safety | {"output": "block"}
        ended = {"model": model, "usage": usage.model_dump(), "finish_reason": "content_filter"}
        extras = {"safety": safety, "reasons": blocked.reasons, "cached": False} | ending.extras()
        yield sse("done", ended | extras)
        return
    except ServiceError as exc:
        yield sse("error", _problem(exc))
        return
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    safety = partial.safety | {"output": window.verdict}
    result = partial.model_copy(
        update={"answer": text, "model": model, "usage": usage, "safety": safety, "grounding": grounding}
    )
    await ending.store(result, fallback_from)
    await ending.remember(text)
    done = {"model": model, "usage": usage.model_dump(), "finish_reason": finish_reason, "safety": safety}
    extras = {"grounding": grounding.model_dump() if grounding else None, "cached": False}
    yield sse("done", done | extras | ending.extras())


def _problem(exc: ServiceError) -> dict[str, object]:
    return problem_body(
        status=exc.status_code,
        title=exc.title,
        detail=exc.detail,
        type_slug=exc.type_slug,
        instance="",
        **exc.extra,
    )
