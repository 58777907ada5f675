"""RAG generation jobs: forwarded to the orchestrator for the caller's tenant.

Submitting reserves tokens like a synchronous query and keeps the estimate (the answer comes later,
outside this request); polling the status or fetching the result counts as a request only.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from rag_common.contracts import GenerationJobStatus, RagAnswer, RagJobRequest

from . import limits as limits_service
from . import proxy as proxy_service
from . import relay as relay_service
from .access import Caller
from .deps import AUTHENTICATED, GenerationDep, OrchestratorDep, QueryCallerDep
from .routes import REFUSALS

router = APIRouter(prefix="/v1/rag/jobs", tags=["rag"])
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


def _located(response: Response) -> Response:
    """The orchestrator's `Location` does not pass the proxy; the gateway's path is the same."""
    if response.status_code == status.HTTP_202_ACCEPTED:
        response.headers["Location"] = f"/v1/rag/jobs/{json.loads(bytes(response.body))['job_id']}"
    return response


async def _forward(orchestrator: OrchestratorDep, caller: Caller, method: str, path: str) -> Response:
    return await proxy_service.forward(
        orchestrator,
        path,
        None,
        tenant=caller.tenant,
        headers=limits_service.headers(caller.rate),
        method=method,
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses={202: {"model": GenerationJobStatus}, 422: {}, **REFUSALS},
    openapi_extra=AUTHENTICATED,
)
async def submit_generation_job(body: RagJobRequest, generation: GenerationDep) -> Response:
    """A RAG query answered in the background; poll the job, or pass `webhook_url` to be called."""
    response = await relay_service.relay_generation(body, "/v1/rag/jobs", generation)
    return _located(response)


@router.get("/{job_id}", responses={200: {"model": GenerationJobStatus}, 404: {}, **REFUSALS})
async def generation_job(job_id: JobId, caller: QueryCallerDep, orchestrator: OrchestratorDep) -> Response:
    return await _forward(orchestrator, caller, "GET", f"/v1/rag/jobs/{job_id}")


@router.get(
    "/{job_id}/result",
    responses={
        200: {"model": RagAnswer},
        404: {},
        409: {"description": "The job is still queued or running, or it failed."},
        **REFUSALS,
    },
)
async def generation_job_result(
    job_id: JobId, caller: QueryCallerDep, orchestrator: OrchestratorDep
) -> Response:
    return await _forward(orchestrator, caller, "GET", f"/v1/rag/jobs/{job_id}/result")
