from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel

from rag_common.contracts import ChatCompletionRequest, IngestRequest, IngestResponse, RagAnswer, RagQuery

from . import proxy as proxy_service
from .access import Caller, rate_limit_headers
from .deps import CallerDep, OrchestratorDep

router = APIRouter(prefix="/v1")
STREAM_NOTE = "JSON, or a `text/event-stream` when the body sets `stream: true`."


async def _forward(body: BaseModel, caller: Caller, orchestrator: OrchestratorDep, path: str) -> Response:
    payload = body.model_dump_json(exclude_unset=True).encode()
    return await proxy_service.forward(orchestrator, path, payload, rate_limit_headers(caller.rate))


@router.post("/rag/query", tags=["rag"], responses={200: {"model": RagAnswer, "description": STREAM_NOTE}})
async def rag_query(body: RagQuery, caller: CallerDep, orchestrator: OrchestratorDep) -> Response:
    return await _forward(body, caller, orchestrator, "/v1/rag/query")


@router.post("/documents", tags=["documents"], responses={200: {"model": IngestResponse}})
async def ingest_documents(body: IngestRequest, caller: CallerDep, orchestrator: OrchestratorDep) -> Response:
    return await _forward(body, caller, orchestrator, "/v1/documents")


@router.post("/chat/completions", tags=["openai"], responses={200: {"description": STREAM_NOTE}})
async def chat_completions(
    body: ChatCompletionRequest, caller: CallerDep, orchestrator: OrchestratorDep
) -> Response:
    return await _forward(body, caller, orchestrator, "/v1/chat/completions")
