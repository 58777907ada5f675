from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from rag_common.contracts import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    CollectionInfo,
    CollectionList,
    CollectionName,
    DocumentCounts,
    DocumentDeleted,
    DocumentDetail,
    EmbeddingRequest,
    EmbeddingResponse,
    IngestRequest,
    IngestResponse,
    JobStatus,
    ModelList,
    NewCollection,
    RagAnswer,
    RagQuery,
)

from . import chat as chat_service
from . import collections as collections_service
from . import documents as documents_service
from . import ingest as ingest_service
from . import rag as rag_service
from . import router as model_router
from . import streaming as streaming_service
from . import tenancy, timing
from . import uploads as uploads_service
from .deps import ASKED_HEADERS, AskedDep, EmbeddingApiDep, JobsDep, LlmApiDep, PipelineDep, TenantDep

router = APIRouter(prefix="/v1")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.post("/rag/query", response_model=RagAnswer, tags=["rag"], openapi_extra=ASKED_HEADERS)
async def rag_query(body: RagQuery, asked: AskedDep, response: Response) -> RagAnswer | StreamingResponse:
    tenant = asked.tenant
    query = tenancy.scoped_query(body, tenant)
    timings = timing.begin()
    with tenancy.tenant_errors(tenant):
        routed = model_router.route(query, tenant, asked.pipeline, caller=asked.caller)
        if body.stream:
            events = await streaming_service.answer_stream(query, pipeline=routed.pipeline)
            headers = SSE_HEADERS | timings.header(last="ttfb") | routed.headers()
            return StreamingResponse(events, media_type="text/event-stream", headers=headers)
        answer = await rag_service.answer(query, pipeline=routed.pipeline, restore_pii=True)
    response.headers.update(timings.header() | routed.headers(answer.model))
    return routed.finish(answer, timings.elapsed())


@router.post("/documents", response_model=IngestResponse, tags=["documents"])
async def ingest_documents(body: IngestRequest, pipeline: PipelineDep, tenant: TenantDep) -> IngestResponse:
    with tenancy.tenant_errors(tenant):
        response = await ingest_service.ingest(tenancy.scoped_ingest(body, tenant), pipeline=pipeline)
    return tenancy.unscoped_ingest(response, tenant)


@router.post(
    "/chat/completions", response_model=ChatCompletionResponse, tags=["chat"], openapi_extra=ASKED_HEADERS
)
async def chat_completions(
    body: ChatCompletionRequest, asked: AskedDep, response: Response
) -> ChatCompletionResponse | StreamingResponse:
    tenant = asked.tenant
    request = tenancy.scoped_chat(body, tenant)
    timings = timing.begin()
    with tenancy.tenant_errors(tenant):
        routed = model_router.route_chat(request, tenant, asked.pipeline, caller=asked.caller)
        if body.stream:
            chunks = await chat_service.complete_stream(request, pipeline=routed.pipeline)
            headers = SSE_HEADERS | timings.header(last="ttfb") | routed.headers()
            return StreamingResponse(chunks, media_type="text/event-stream", headers=headers)
        completion = await chat_service.complete(request, pipeline=routed.pipeline)
    response.headers.update(timings.header() | routed.headers(completion.model))
    return completion


@router.post(
    "/documents/jobs", response_model=JobStatus, status_code=status.HTTP_202_ACCEPTED, tags=["documents"]
)
async def submit_ingestion_job(body: IngestRequest, jobs: JobsDep, tenant: TenantDep) -> JobStatus:
    job = await jobs.submit(tenancy.scoped_ingest(body, tenant), tenant)
    return tenancy.unscoped_job(job, tenant)


@router.post(
    "/documents/upload", response_model=JobStatus, status_code=status.HTTP_202_ACCEPTED, tags=["documents"]
)
async def upload_documents(
    files: Annotated[list[UploadFile], File(description="Files: .txt, .md, .html, .pdf, .docx.")],
    jobs: JobsDep,
    tenant: TenantDep,
    collection: Annotated[CollectionName, Form()] = "default",
    metadata: Annotated[str | None, Form(description="A JSON object given to every file.")] = None,
) -> JobStatus:
    documents = await uploads_service.documents_from(files, uploads_service.parse_metadata(metadata))
    request = IngestRequest(collection=collection, documents=documents)
    job = await jobs.submit(tenancy.scoped_ingest(request, tenant), tenant)
    return tenancy.unscoped_job(job, tenant)


@router.get("/documents/jobs/{job_id}", response_model=JobStatus, tags=["documents"])
async def ingestion_job(job_id: str, jobs: JobsDep, tenant: TenantDep) -> JobStatus:
    return tenancy.unscoped_job(await jobs.status(job_id, tenant), tenant)


@router.post(
    "/collections", response_model=CollectionInfo, status_code=status.HTTP_201_CREATED, tags=["collections"]
)
async def create_collection(body: NewCollection, pipeline: PipelineDep, tenant: TenantDep) -> CollectionInfo:
    with tenancy.tenant_errors(tenant):
        return await collections_service.create(tenant, body.name, pipeline=pipeline)


@router.get("/collections", response_model=CollectionList, tags=["collections"])
async def list_collections(pipeline: PipelineDep, tenant: TenantDep) -> CollectionList:
    return await collections_service.list_for(tenant, pipeline=pipeline)


@router.delete("/collections/{collection}", status_code=status.HTTP_204_NO_CONTENT, tags=["collections"])
async def delete_collection(collection: CollectionName, pipeline: PipelineDep, tenant: TenantDep) -> Response:
    with tenancy.tenant_errors(tenant):
        await collections_service.delete(tenant, collection, pipeline=pipeline)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/collections/{collection}/documents", response_model=DocumentCounts, tags=["documents"])
async def list_documents(
    collection: CollectionName, pipeline: PipelineDep, tenant: TenantDep
) -> DocumentCounts:
    with tenancy.tenant_errors(tenant):
        return await documents_service.list_documents(tenancy.physical(tenant, collection), pipeline=pipeline)


@router.get(
    "/collections/{collection}/documents/{document_id:path}",
    response_model=DocumentDetail,
    tags=["documents"],
)
async def get_document(
    collection: CollectionName, document_id: str, pipeline: PipelineDep, tenant: TenantDep
) -> DocumentDetail:
    with tenancy.tenant_errors(tenant):
        detail = await documents_service.get_document(
            tenancy.physical(tenant, collection), document_id, pipeline=pipeline
        )
    return detail.model_copy(update={"collection": collection})


@router.delete(
    "/collections/{collection}/documents/{document_id:path}",
    response_model=DocumentDeleted,
    tags=["documents"],
)
async def delete_document(
    collection: CollectionName, document_id: str, pipeline: PipelineDep, tenant: TenantDep
) -> DocumentDeleted:
    with tenancy.tenant_errors(tenant):
        deleted = await documents_service.delete_document(
            tenancy.physical(tenant, collection), document_id, pipeline=pipeline
        )
    return deleted.model_copy(update={"collection": collection})


@router.post("/embeddings", response_model=EmbeddingResponse, tags=["openai"])
async def create_embeddings(body: EmbeddingRequest, embedding: EmbeddingApiDep) -> EmbeddingResponse:
    return await embedding.create(body)


@router.get("/models", response_model=ModelList, tags=["openai"])
async def list_models(llm: LlmApiDep) -> ModelList:
    return await llm.models()
