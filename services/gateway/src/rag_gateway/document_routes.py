"""Collections, documents, uploads, ingestion jobs, and the OpenAI embeddings and models endpoints:
forwarded to the orchestrator for the caller's tenant."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Request, Response, status

from rag_common.contracts import (
    CollectionInfo,
    CollectionList,
    CollectionName,
    DocumentCounts,
    DocumentDeleted,
    DocumentDetail,
    EmbeddingRequest,
    EmbeddingResponse,
    IngestRequest,
    JobStatus,
    ModelList,
    NewCollection,
    ReembedStatus,
)

from . import limits as limits_service
from . import proxy as proxy_service
from .access import Caller
from .deps import IngestCallerDep, OrchestratorDep, QueryCallerDep
from .routes import REFUSALS

router = APIRouter(prefix="/v1")
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "collection": {"type": "string", "default": "default"},
                        "metadata": {"type": "string", "description": "A JSON object given to every file."},
                    },
                }
            }
        },
    }
}


async def _forward(
    orchestrator: OrchestratorDep,
    caller: Caller,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str = "application/json",
) -> Response:
    return await proxy_service.forward(
        orchestrator,
        path,
        body,
        tenant=caller.tenant,
        headers=limits_service.headers(caller.rate),
        method=method,
        content_type=content_type,
    )


@router.post(
    "/documents/jobs",
    tags=["documents"],
    status_code=status.HTTP_202_ACCEPTED,
    responses={202: {"model": JobStatus}, **REFUSALS},
)
async def submit_ingestion_job(
    body: IngestRequest, caller: IngestCallerDep, orchestrator: OrchestratorDep
) -> Response:
    return await _forward(orchestrator, caller, "POST", "/v1/documents/jobs", body.model_dump_json().encode())


@router.post(
    "/documents/upload",
    tags=["documents"],
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        202: {"model": JobStatus},
        413: {"description": "Upload too large."},
        415: {},
        422: {},
        **REFUSALS,
    },
    openapi_extra=UPLOAD_BODY,
)
async def upload_documents(
    request: Request, caller: IngestCallerDep, orchestrator: OrchestratorDep
) -> Response:
    """Files (.txt, .md, .html, .pdf, .docx) become one ingestion job; the body passes through as sent."""
    content_type = request.headers.get("content-type", "")
    body = await request.body()
    return await _forward(orchestrator, caller, "POST", "/v1/documents/upload", body, content_type)


@router.get("/documents/jobs/{job_id}", tags=["documents"], responses={200: {"model": JobStatus}, **REFUSALS})
async def ingestion_job(job_id: JobId, caller: IngestCallerDep, orchestrator: OrchestratorDep) -> Response:
    return await _forward(orchestrator, caller, "GET", f"/v1/documents/jobs/{job_id}")


@router.post(
    "/collections",
    tags=["collections"],
    status_code=status.HTTP_201_CREATED,
    responses={201: {"model": CollectionInfo}, **REFUSALS},
)
async def create_collection(
    body: NewCollection, caller: IngestCallerDep, orchestrator: OrchestratorDep
) -> Response:
    return await _forward(orchestrator, caller, "POST", "/v1/collections", body.model_dump_json().encode())


@router.get("/collections", tags=["collections"], responses={200: {"model": CollectionList}, **REFUSALS})
async def list_collections(caller: QueryCallerDep, orchestrator: OrchestratorDep) -> Response:
    return await _forward(orchestrator, caller, "GET", "/v1/collections")


@router.delete(
    "/collections/{collection}",
    tags=["collections"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=REFUSALS,
)
async def delete_collection(
    collection: CollectionName, caller: IngestCallerDep, orchestrator: OrchestratorDep
) -> Response:
    return await _forward(orchestrator, caller, "DELETE", f"/v1/collections/{collection}")


@router.post(
    "/collections/{collection}/reembed",
    tags=["collections"],
    status_code=status.HTTP_202_ACCEPTED,
    responses={202: {"model": ReembedStatus}, **REFUSALS},
)
async def submit_reembed_job(
    collection: CollectionName, caller: IngestCallerDep, orchestrator: OrchestratorDep
) -> Response:
    """Re-embeds the collection with the embedding model in service; it serves the old vectors until done."""
    return await _forward(orchestrator, caller, "POST", f"/v1/collections/{collection}/reembed")


@router.get(
    "/collections/{collection}/reembed/{job_id}",
    tags=["collections"],
    responses={200: {"model": ReembedStatus}, **REFUSALS},
)
async def reembed_job(
    collection: CollectionName, job_id: JobId, caller: IngestCallerDep, orchestrator: OrchestratorDep
) -> Response:
    return await _forward(orchestrator, caller, "GET", f"/v1/collections/{collection}/reembed/{job_id}")


@router.get(
    "/collections/{collection}/documents",
    tags=["documents"],
    responses={200: {"model": DocumentCounts}, **REFUSALS},
)
async def list_documents(
    collection: CollectionName, caller: QueryCallerDep, orchestrator: OrchestratorDep
) -> Response:
    return await _forward(orchestrator, caller, "GET", f"/v1/collections/{collection}/documents")


@router.get(
    "/collections/{collection}/documents/{document_id:path}",
    tags=["documents"],
    responses={200: {"model": DocumentDetail}, **REFUSALS},
)
async def get_document(
    collection: CollectionName, document_id: str, caller: QueryCallerDep, orchestrator: OrchestratorDep
) -> Response:
    return await _forward(
        orchestrator, caller, "GET", f"/v1/collections/{collection}/documents/{quote(document_id, safe='/')}"
    )


@router.delete(
    "/collections/{collection}/documents/{document_id:path}",
    tags=["documents"],
    responses={200: {"model": DocumentDeleted}, **REFUSALS},
)
async def delete_document(
    collection: CollectionName, document_id: str, caller: IngestCallerDep, orchestrator: OrchestratorDep
) -> Response:
    return await _forward(
        orchestrator,
        caller,
        "DELETE",
        f"/v1/collections/{collection}/documents/{quote(document_id, safe='/')}",
    )


@router.post("/embeddings", tags=["openai"], responses={200: {"model": EmbeddingResponse}, **REFUSALS})
async def create_embeddings(
    body: EmbeddingRequest, caller: QueryCallerDep, orchestrator: OrchestratorDep
) -> Response:
    """OpenAI-compatible embeddings with the platform's embedding model."""
    return await _forward(orchestrator, caller, "POST", "/v1/embeddings", body.model_dump_json().encode())


@router.get("/models", tags=["openai"], responses={200: {"model": ModelList}, **REFUSALS})
async def list_models(caller: QueryCallerDep, orchestrator: OrchestratorDep) -> Response:
    """The chat models the llm service serves."""
    return await _forward(orchestrator, caller, "GET", "/v1/models")
