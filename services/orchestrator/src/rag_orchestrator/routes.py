from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from rag_common.contracts import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    IngestRequest,
    IngestResponse,
    RagAnswer,
    RagQuery,
)

from . import chat as chat_service
from . import ingest as ingest_service
from . import rag as rag_service
from .deps import PipelineDep

router = APIRouter(prefix="/v1")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.post("/rag/query", response_model=RagAnswer, tags=["rag"])
async def rag_query(body: RagQuery, pipeline: PipelineDep) -> RagAnswer | StreamingResponse:
    if body.stream:
        events = await rag_service.answer_stream(body, pipeline=pipeline)
        return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
    return await rag_service.answer(body, pipeline=pipeline)


@router.post("/documents", response_model=IngestResponse, tags=["documents"])
async def ingest_documents(body: IngestRequest, pipeline: PipelineDep) -> IngestResponse:
    return await ingest_service.ingest(body, pipeline=pipeline)


@router.post("/chat/completions", response_model=ChatCompletionResponse, tags=["chat"])
async def chat_completions(
    body: ChatCompletionRequest, pipeline: PipelineDep
) -> ChatCompletionResponse | StreamingResponse:
    if body.stream:
        chunks = await chat_service.complete_stream(body, pipeline=pipeline)
        return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)
    return await chat_service.complete(body, pipeline=pipeline)
