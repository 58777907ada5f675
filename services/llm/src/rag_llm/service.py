"""Chat and grounded completions over the routed backends, in the OpenAI wire format."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span
from starlette.concurrency import run_in_threadpool

from rag_common.contracts import (
    ChatChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessage,
    ChunkChoice,
    ChunkDelta,
    GenerationParams,
    GroundedCompletionRequest,
    Usage,
    new_completion_id,
)
from rag_common.errors import ServiceError

from . import observe, packing, prompts
from .ports import SamplingDefaults, SamplingParams, StreamEnd
from .routing import ModelRouter, OpenStream, Served

logger = logging.getLogger(__name__)

SSE_DONE = "data: [DONE]\n\n"
PROMPT_VERSION_ATTRIBUTE = "llm.prompt_version"


def sampling_params(request: GenerationParams, defaults: SamplingDefaults) -> SamplingParams:
    stop = (request.stop,) if isinstance(request.stop, str) else tuple(request.stop or ())
    return SamplingParams(
        max_tokens=request.max_tokens or defaults.max_tokens,
        temperature=defaults.temperature if request.temperature is None else request.temperature,
        top_p=request.top_p,
        stop=stop,
        seed=request.seed,
    )


@dataclass(frozen=True, slots=True)
class Answer:
    response: ChatCompletionResponse
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class OpenedStream:
    lines: AsyncIterator[str]
    headers: dict[str, str]


async def chat(request: ChatCompletionRequest, *, router: ModelRouter, defaults: SamplingDefaults) -> Answer:
    return await _complete(request.model, request.messages, sampling_params(request, defaults), router=router)


async def chat_stream(
    request: ChatCompletionRequest, *, router: ModelRouter, defaults: SamplingDefaults
) -> OpenedStream:
    """Generation starts before this returns, so its early errors keep their own status."""
    params = sampling_params(request, defaults)
    return await _open_stream(request.model, request.messages, params, router=router)


async def grounded(
    request: GroundedCompletionRequest, *, router: ModelRouter, defaults: SamplingDefaults
) -> Answer:
    params = sampling_params(request, defaults)
    packed, fields = await _grounded_prompt(request, params, router=router)
    answer = await _complete(request.model, packed.messages, params, router=router)
    return Answer(response=answer.response.model_copy(update=fields), headers=answer.headers)


async def grounded_stream(
    request: GroundedCompletionRequest, *, router: ModelRouter, defaults: SamplingDefaults
) -> OpenedStream:
    params = sampling_params(request, defaults)
    packed, fields = await _grounded_prompt(request, params, router=router)
    return await _open_stream(request.model, packed.messages, params, router=router, first_fields=fields)


async def _grounded_prompt(
    request: GroundedCompletionRequest, params: SamplingParams, *, router: ModelRouter
) -> tuple[packing.Packed, dict[str, Any]]:
    """The versioned prompt packed for the requested model's window (fallbacks get the same prompt)."""
    template = prompts.template_for(request.prompt_version)
    backend = router.entry(request.model).backend
    packed = await run_in_threadpool(
        packing.pack, request, template, backend=backend, max_tokens=params.max_tokens
    )
    span = trace.get_current_span()
    span.set_attribute(PROMPT_VERSION_ATTRIBUTE, template.version)
    span.set_attribute(observe.CONTEXTS_USED, packed.contexts_used)
    return packed, {"prompt_version": template.version, "contexts_used": packed.contexts_used}


async def _complete(
    requested: str | None, messages: Sequence[ChatMessage], params: SamplingParams, *, router: ModelRouter
) -> Answer:
    span = trace.get_current_span()
    observe.record_asked(span, requested or router.default, params)
    completion, served = await router.complete(requested, messages, params)
    observe.record_served(span, served)
    observe.record_result(span, completion.usage, completion.finish_reason, served.model)
    response = ChatCompletionResponse(
        model=served.model,
        model_version=served.version,
        choices=[
            ChatChoice(
                message=ChatMessage(role="assistant", content=completion.text),
                finish_reason=completion.finish_reason,
            )
        ],
        usage=completion.usage,
    )
    return Answer(response=response.model_copy(update=_fallback_fields(served)), headers=served.headers)


def _fallback_fields(served: Served) -> dict[str, str]:
    """In the body too (not only the header), so callers that cache can tell a fallback's answer apart."""
    return {"fallback_from": served.requested} if served.fallback else {}


async def _open_stream(
    requested: str | None,
    messages: Sequence[ChatMessage],
    params: SamplingParams,
    *,
    router: ModelRouter,
    first_fields: dict[str, Any] | None = None,
) -> OpenedStream:
    span = trace.get_current_span()
    observe.record_asked(span, requested or router.default, params)
    timer = observe.TokenTimer()
    opened = await router.open_stream(requested, messages, params)
    observe.record_served(span, opened.served)
    fields = (first_fields or {}) | _fallback_fields(opened.served)
    lines = _sse_lines(
        opened, _ChunkWriter(opened.served, fields), _StreamSpan(span, timer, opened.served.model)
    )
    return OpenedStream(lines=lines, headers=opened.served.headers)


@dataclass(frozen=True, slots=True)
class _StreamSpan:
    """The request span and the stream's clock, kept for when the stream ends."""

    span: Span
    timer: observe.TokenTimer
    model: str

    def finished(self, end: StreamEnd) -> None:
        observe.record_result(self.span, end.usage, end.finish_reason, self.model)
        self.timer.record(self.span, end.usage.completion_tokens, self.model)


async def _sse_lines(opened: OpenStream, chunks: _ChunkWriter, span: _StreamSpan) -> AsyncIterator[str]:
    """`data: {chunk}` lines: the role first, one per text delta, then finish reason with usage, then [DONE]."""
    events = opened.events
    try:
        yield chunks.first_line()
        event = opened.first
        while isinstance(event, str):
            span.timer.text_arrived()
            yield chunks.line(ChunkDelta(content=event))
            event = await anext(events)
        span.finished(event)
        yield chunks.line(ChunkDelta(), finish_reason=event.finish_reason, usage=event.usage)
        yield SSE_DONE
    except ServiceError as exc:
        # The status line is gone already; tell the client in OpenAI's in-stream error shape.
        logger.warning("generation failed mid-stream: %s", exc.detail)
        yield _sse_data({"error": {"message": exc.detail, "type": exc.type_slug, "code": exc.status_code}})
    finally:
        await events.aclose()


class _ChunkWriter:
    """Chunks of one stream share an id and a creation time."""

    def __init__(self, served: Served, first_fields: dict[str, Any]) -> None:
        self._id = new_completion_id()
        self._created = int(time.time())
        self._model = served.model
        self._version = served.version
        self._first_fields = first_fields

    def first_line(self) -> str:
        """The assistant role, plus the endpoint's own fields (e.g. `prompt_version`)."""
        return self.line(ChunkDelta(role="assistant", content=""), fields=self._first_fields)

    def line(
        self,
        delta: ChunkDelta,
        *,
        finish_reason: str | None = None,
        usage: Usage | None = None,
        fields: dict[str, Any] | None = None,
    ) -> str:
        chunk = ChatCompletionChunk(
            id=self._id,
            created=self._created,
            model=self._model,
            model_version=self._version,
            choices=[ChunkChoice(delta=delta, finish_reason=finish_reason)],
            usage=usage,
        )
        if fields:
            chunk = chunk.model_copy(update=fields)
        return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"


def _sse_data(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"
