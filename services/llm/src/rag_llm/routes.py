from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from rag_common.contracts import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    GroundedCompletionRequest,
    ModelCard,
    ModelList,
)

from . import service as llm_service
from .deps import BackendDep, DefaultsDep

router = APIRouter(prefix="/v1", tags=["llm"])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A completion, or with `stream: true` server-sent `chat.completion.chunk` events.",
        "content": {"text/event-stream": {}},
    }
}


def _event_stream(lines: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(lines, media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/chat/completions", response_model=ChatCompletionResponse, responses=STREAM_RESPONSE)
async def create_chat_completion(
    body: ChatCompletionRequest, backend: BackendDep, defaults: DefaultsDep
) -> ChatCompletionResponse | StreamingResponse:
    if body.stream:
        return _event_stream(await llm_service.chat_stream(body, backend=backend, defaults=defaults))
    return await llm_service.chat(body, backend=backend, defaults=defaults)


@router.post("/grounded/completions", response_model=ChatCompletionResponse, responses=STREAM_RESPONSE)
async def create_grounded_completion(
    body: GroundedCompletionRequest, backend: BackendDep, defaults: DefaultsDep
) -> ChatCompletionResponse | StreamingResponse:
    """Answer `question` from the numbered `contexts` with the versioned prompt (`prompt_version`)."""
    if body.stream:
        return _event_stream(await llm_service.grounded_stream(body, backend=backend, defaults=defaults))
    return await llm_service.grounded(body, backend=backend, defaults=defaults)


@router.get("/models", response_model=ModelList)
async def list_models(backend: BackendDep) -> ModelList:
    return ModelList(data=[ModelCard(id=backend.model_name)])
