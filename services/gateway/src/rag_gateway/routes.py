from __future__ import annotations

from fastapi import APIRouter, Response

from rag_common.contracts import ChatCompletionRequest, IngestRequest, IngestResponse, RagAnswer, RagQuery
from rag_common.routing import LeanRoute

from . import relay as relay_service
from .deps import AUTHENTICATED, GenerationDep, IngestCallerDep, OrchestratorDep

# LeanRoute: the generation routes' valid requests skip FastAPI's generic handling (rag_common.routing);
# the ingestion route has another shape and keeps it.
router = APIRouter(prefix="/v1", route_class=LeanRoute)
STREAM_NOTE = "JSON, or a `text/event-stream` when the body sets `stream: true`."
REFUSALS: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing, unknown or expired API key."},
    403: {"description": "The key lacks the scope this endpoint needs."},
    429: {"description": "A rate limit was hit; `RateLimit` names the policy, `Retry-After` says when."},
    503: {"description": "The orchestrator or Redis is unavailable."},
}


@router.post(
    "/rag/query",
    tags=["rag"],
    responses={200: {"model": RagAnswer, "description": STREAM_NOTE}, **REFUSALS},
    openapi_extra=AUTHENTICATED,
)
async def rag_query(body: RagQuery, generation: GenerationDep) -> Response:
    return await relay_service.relay_generation(body, "/v1/rag/query", generation)


@router.post("/documents", tags=["documents"], responses={200: {"model": IngestResponse}, **REFUSALS})
async def ingest_documents(
    body: IngestRequest, caller: IngestCallerDep, orchestrator: OrchestratorDep
) -> Response:
    return await relay_service.relay(body, "/v1/documents", caller=caller, orchestrator=orchestrator)


@router.post(
    "/chat/completions",
    tags=["openai"],
    responses={200: {"description": STREAM_NOTE}, **REFUSALS},
    openapi_extra=AUTHENTICATED,
)
async def chat_completions(body: ChatCompletionRequest, generation: GenerationDep) -> Response:
    return await relay_service.relay_generation(body, "/v1/chat/completions", generation)
