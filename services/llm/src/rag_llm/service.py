"""Chat and grounded completions over any `ChatBackend`, in the OpenAI wire format."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

from opentelemetry import trace

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

from . import prompts
from .errors import ModelNotServed
from .ports import ChatBackend, SamplingDefaults, SamplingParams, StreamEvent

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


def check_model(requested: str | None, backend: ChatBackend) -> None:
    if requested not in (None, backend.model_name):
        raise ModelNotServed(str(requested), backend.model_name)


async def chat(
    request: ChatCompletionRequest, *, backend: ChatBackend, defaults: SamplingDefaults
) -> ChatCompletionResponse:
    check_model(request.model, backend)
    return await _complete(request.messages, sampling_params(request, defaults), backend=backend)


async def chat_stream(
    request: ChatCompletionRequest, *, backend: ChatBackend, defaults: SamplingDefaults
) -> AsyncIterator[str]:
    """Generation starts before this returns, so its early errors keep their own status."""
    check_model(request.model, backend)
    return await _open_stream(request.messages, sampling_params(request, defaults), backend=backend)


async def grounded(
    request: GroundedCompletionRequest, *, backend: ChatBackend, defaults: SamplingDefaults
) -> ChatCompletionResponse:
    check_model(request.model, backend)
    template = _grounded_template()
    messages = prompts.grounded_messages(request, template)
    response = await _complete(messages, sampling_params(request, defaults), backend=backend)
    return response.model_copy(update={"prompt_version": template.version})


async def grounded_stream(
    request: GroundedCompletionRequest, *, backend: ChatBackend, defaults: SamplingDefaults
) -> AsyncIterator[str]:
    check_model(request.model, backend)
    template = _grounded_template()
    messages = prompts.grounded_messages(request, template)
    params = sampling_params(request, defaults)
    return await _open_stream(
        messages, params, backend=backend, first_fields={"prompt_version": template.version}
    )


def _grounded_template() -> prompts.PromptTemplate:
    template = prompts.load_template(prompts.RAG_PROMPT_VERSION)
    trace.get_current_span().set_attribute(PROMPT_VERSION_ATTRIBUTE, template.version)
    return template


def _record_usage(usage: Usage) -> None:
    span = trace.get_current_span()
    span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)


async def _complete(
    messages: Sequence[ChatMessage], params: SamplingParams, *, backend: ChatBackend
) -> ChatCompletionResponse:
    completion = await backend.complete(messages, params)
    _record_usage(completion.usage)
    return ChatCompletionResponse(
        model=backend.model_name,
        choices=[
            ChatChoice(
                message=ChatMessage(role="assistant", content=completion.text),
                finish_reason=completion.finish_reason,
            )
        ],
        usage=completion.usage,
    )


async def _open_stream(
    messages: Sequence[ChatMessage],
    params: SamplingParams,
    *,
    backend: ChatBackend,
    first_fields: dict[str, Any] | None = None,
) -> AsyncIterator[str]:
    events = backend.stream(messages, params)
    first = await anext(events)  # an error here has finalized `events` already
    return _sse_lines(first, events, model=backend.model_name, first_fields=first_fields or {})


async def _sse_lines(
    first: StreamEvent,
    events: AsyncGenerator[StreamEvent, None],
    *,
    model: str,
    first_fields: dict[str, Any],
) -> AsyncIterator[str]:
    """`data: {chunk}` lines: the role first, one per text delta, then finish reason with usage, then [DONE]."""
    chunks = _ChunkWriter(model)
    try:
        yield chunks.line(ChunkDelta(role="assistant", content=""), fields=first_fields)
        event = first
        while isinstance(event, str):
            yield chunks.line(ChunkDelta(content=event))
            event = await anext(events)
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

    def __init__(self, model: str) -> None:
        self._id = new_completion_id()
        self._created = int(time.time())
        self._model = model

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
            choices=[ChunkChoice(delta=delta, finish_reason=finish_reason)],
            usage=usage,
        )
        if fields:
            chunk = chunk.model_copy(update=fields)
        return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"


def _sse_data(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"
