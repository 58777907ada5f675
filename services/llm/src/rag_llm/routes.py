from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from rag_common.contracts import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    GroundedCompletionRequest,
    ModelCard,
    ModelList,
)
from rag_common.model_slots import ModelSlotInfo, ModelSlotList

from . import service as llm_service
from . import swaps as swap_service
from .deps import DefaultsDep, FactoryDep, RouterDep, SettingsDep

router = APIRouter(prefix="/v1", tags=["llm"])
admin_router = APIRouter(prefix="/v1/admin", tags=["admin"])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A completion, or with `stream: true` server-sent `chat.completion.chunk` events.",
        "content": {"text/event-stream": {}},
    }
}


def _event_stream(opened: llm_service.OpenedStream) -> StreamingResponse:
    headers = SSE_HEADERS | opened.headers
    return StreamingResponse(opened.lines, media_type="text/event-stream", headers=headers)


def _answer(answer: llm_service.Answer, response: Response) -> ChatCompletionResponse:
    response.headers.update(answer.headers)
    return answer.response


@router.post("/chat/completions", response_model=ChatCompletionResponse, responses=STREAM_RESPONSE)
async def create_chat_completion(
    body: ChatCompletionRequest, router: RouterDep, defaults: DefaultsDep, response: Response
) -> ChatCompletionResponse | StreamingResponse:
    """`model` picks one of the served models (default: the first); `X-Model-Fallback` tells of a fallback."""
    if body.stream:
        return _event_stream(await llm_service.chat_stream(body, router=router, defaults=defaults))
    return _answer(await llm_service.chat(body, router=router, defaults=defaults), response)


@router.post("/grounded/completions", response_model=ChatCompletionResponse, responses=STREAM_RESPONSE)
async def create_grounded_completion(
    body: GroundedCompletionRequest, router: RouterDep, defaults: DefaultsDep, response: Response
) -> ChatCompletionResponse | StreamingResponse:
    """Answer `question` from the best `contexts` that fit (`contexts_used`) with the versioned prompt."""
    if body.stream:
        return _event_stream(await llm_service.grounded_stream(body, router=router, defaults=defaults))
    return _answer(await llm_service.grounded(body, router=router, defaults=defaults), response)


@router.get("/models", response_model=ModelList)
async def list_models(router: RouterDep) -> ModelList:
    return ModelList(data=[ModelCard(id=name) for name in router.names])


@admin_router.get("/models", response_model=ModelSlotList)
async def list_model_versions(router: RouterDep) -> ModelSlotList:
    """Each served model's current version, and any version loading or draining, with requests in flight."""
    return router.describe()


@admin_router.post(
    "/models/{name}/load",
    response_model=ModelSlotInfo,
    responses={
        409: {"description": "A swap of this model is already running, or the version already serves."},
        422: {"description": "The new version failed to load or its check; the old one keeps serving."},
    },
)
async def load_model_version(
    name: str,
    body: swap_service.LoadModelRequest,
    router: RouterDep,
    settings: SettingsDep,
    factory: FactoryDep,
) -> ModelSlotInfo:
    """Load a new version beside the current one, warm and check it, then switch new requests to it."""
    return await swap_service.load_version(name, body, router=router, settings=settings, factory=factory)
