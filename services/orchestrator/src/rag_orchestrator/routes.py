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
from . import tenancy
from .deps import PipelineDep, TenantDep

router = APIRouter(prefix="/v1")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.post("/rag/query", response_model=RagAnswer, tags=["rag"])
async def rag_query(
    body: RagQuery, pipeline: PipelineDep, tenant: TenantDep
) -> RagAnswer | StreamingResponse:
    query = tenancy.scoped_query(body, tenant)
    with tenancy.tenant_errors(tenant):
        if body.stream:
            events = await rag_service.answer_stream(query, pipeline=pipeline)
            return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
        return await rag_service.answer(query, pipeline=pipeline)


@router.post("/documents", response_model=IngestResponse, tags=["documents"])
async def ingest_documents(body: IngestRequest, pipeline: PipelineDep, tenant: TenantDep) -> IngestResponse:
    with tenancy.tenant_errors(tenant):
        response = await ingest_service.ingest(tenancy.scoped_ingest(body, tenant), pipeline=pipeline)
    return tenancy.unscoped_ingest(response, tenant)


@router.post("/chat/completions", response_model=ChatCompletionResponse, tags=["chat"])
async def chat_completions(
    body: ChatCompletionRequest, pipeline: PipelineDep, tenant: TenantDep
) -> ChatCompletionResponse | StreamingResponse:
    request = tenancy.scoped_chat(body, tenant)
    with tenancy.tenant_errors(tenant):
        if body.stream:
            chunks = await chat_service.complete_stream(request, pipeline=pipeline)
            return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)
        return await chat_service.complete(request, pipeline=pipeline)
