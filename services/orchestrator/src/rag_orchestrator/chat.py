"""OpenAI-compatible chat: plain, or grounded in a collection named by the request's `collection` field."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from pydantic import ValidationError

from rag_common.contracts import (
    ChatChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessage,
    ChunkChoice,
    ChunkDelta,
    RagQuery,
    SafetyVerdict,
    new_completion_id,
)
from rag_common.errors import ServiceError, UnprocessableContent

from . import guard, timing
from . import rag as rag_service
from .pipeline import Pipeline

STREAM_END = "data: [DONE]\n\n"
T = TypeVar("T")


def rag_query_from(request: ChatCompletionRequest) -> RagQuery | None:
    """The RAG query a chat request asks for, or None for plain chat."""
    extra = request.model_extra or {}
    if "collection" not in extra:
        return None
    users = [m for m in request.messages if m.role == "user"]
    if not users:
        raise UnprocessableContent("messages: a RAG chat needs at least one user message.")
    fields = {"question": users[-1].content, "collection": extra["collection"]}
    fields |= {k: extra[k] for k in ("top_k", "filter", "tier", "user") if k in extra}
    fields |= {"max_tokens": request.max_tokens, "temperature": request.temperature, "model": request.model}
    try:
        return RagQuery.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UnprocessableContent(f"{where}: {first['msg']}") from exc


def _history(request: ChatCompletionRequest) -> list[ChatMessage]:
    last_user = max(i for i, m in enumerate(request.messages) if m.role == "user")
    return request.messages[:last_user]


async def complete(request: ChatCompletionRequest, *, pipeline: Pipeline) -> ChatCompletionResponse:
    query = rag_query_from(request)
    if query is None:
        return await _plain(request, pipeline)
    retrieved = await rag_service.retrieve(query, pipeline)
    grounded = rag_service.grounded_request(query, retrieved, pipeline.settings, _history(request))
    completion = await rag_service.generate(pipeline, grounded)
    output = await _check_output(pipeline, completion.choices[0].message.content)
    blocked = output.verdict == "block"
    return ChatCompletionResponse(
        id=completion.id,
        model=completion.model,
        choices=[
            ChatChoice(
                message=ChatMessage(
                    role="assistant", content=rag_service.WITHHELD_ANSWER if blocked else output.text
                ),
                finish_reason="content_filter" if blocked else completion.choices[0].finish_reason,
            )
        ],
        usage=completion.usage,
        citations=[c.model_dump() for c in retrieved.citations],
    )


async def _plain(request: ChatCompletionRequest, pipeline: Pipeline) -> ChatCompletionResponse:
    await _check_last_user(request, pipeline)
    completion = await _generation(pipeline.generator.chat(request), pipeline)
    output = await _check_output(pipeline, completion.choices[0].message.content)
    if output.verdict == "block":
        completion.choices[0].message.content = rag_service.WITHHELD_ANSWER
        completion.choices[0].finish_reason = "content_filter"
    else:
        completion.choices[0].message.content = output.text
    return completion


async def complete_stream(request: ChatCompletionRequest, *, pipeline: Pipeline) -> AsyncIterator[str]:
    """Checks and retrieval run before this returns; the stream carries citations on its first chunk."""
    query = rag_query_from(request)
    citations: list[dict[str, object]] | None = None
    if query is None:
        await _check_last_user(request, pipeline)
        chunks = await _generation(pipeline.generator.chat_stream(request), pipeline)
    else:
        retrieved = await rag_service.retrieve(query, pipeline)
        citations = [c.model_dump() for c in retrieved.citations]
        grounded = rag_service.grounded_request(query, retrieved, pipeline.settings, _history(request))
        chunks = await _generation(pipeline.generator.grounded_stream(grounded), pipeline)
    return _relay(pipeline, chunks, citations)


async def _check_last_user(request: ChatCompletionRequest, pipeline: Pipeline) -> None:
    last_user = next((m for m in reversed(request.messages) if m.role == "user"), None)
    if last_user is not None:
        await rag_service.check_input(pipeline, last_user.content)


async def _check_output(pipeline: Pipeline, text: str) -> SafetyVerdict:
    return await timing.timed("safety_out", guard.check(pipeline, text, "output"))


async def _generation(call: Awaitable[T], pipeline: Pipeline) -> T:
    """A completion, or the opening of a stream, within the llm deadline."""
    return await timing.timed("generate", call, service="llm", timeout_s=pipeline.settings.llm_timeout_s)


async def _relay(
    pipeline: Pipeline, chunks: AsyncIterator[ChatCompletionChunk], citations: list[dict[str, object]] | None
) -> AsyncIterator[str]:
    """OpenAI chunks whose text is released a checked window at a time; a blocked window ends the
    stream with `finish_reason: content_filter`."""
    window = guard.StreamGuard(pipeline, max_chars=pipeline.settings.stream_guard_max_chars)
    completion_id, model = new_completion_id(), ""
    try:
        async for chunk in chunks:
            completion_id, model = chunk.id, chunk.model
            if citations is not None:
                chunk = chunk.model_copy(update={"citations": citations})
                citations = None
            for line in await _guarded(chunk, window):
                yield line
        if rest := await window.flush():  # a stream that never said it finished
            yield _text_chunk(completion_id, model, rest)
    except guard.OutputBlocked:
        yield _filtered_chunk(completion_id, model)
    except ServiceError as exc:
        error = {"message": exc.detail, "type": exc.type_slug, "code": exc.status_code}
        yield f"data: {json.dumps({'error': error})}\n\n"
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    yield STREAM_END


async def _guarded(chunk: ChatCompletionChunk, window: guard.StreamGuard) -> list[str]:
    """The chunk with its text replaced by what the guard releases; the held-back rest goes out before
    the chunk that finishes the answer."""
    lines = []
    for choice in chunk.choices:
        released = await window.feed(choice.delta.content) if choice.delta.content else ""
        if choice.finish_reason:
            released += await window.flush()
        choice.delta.content = released or None
    carries = any(c.delta.content or c.delta.role or c.finish_reason for c in chunk.choices)
    if carries or chunk.usage is not None or (chunk.model_extra or {}):
        lines.append(f"data: {chunk.model_dump_json(exclude_none=True)}\n\n")
    return lines


def _text_chunk(completion_id: str, model: str, text: str) -> str:
    chunk = ChatCompletionChunk(
        id=completion_id, model=model, choices=[ChunkChoice(delta=ChunkDelta(content=text))]
    )
    return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"


def _filtered_chunk(completion_id: str, model: str) -> str:
    chunk = ChatCompletionChunk(
        id=completion_id,
        model=model,
        choices=[ChunkChoice(delta=ChunkDelta(content=""), finish_reason="content_filter")],
    )
    return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"
