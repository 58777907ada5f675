from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from rag_common.contracts import GenerationJobStatus, RagAnswer, RagJobRequest

from . import generation_jobs as generation_jobs_service
from . import router as model_router
from . import tenancy
from .deps import GenerationJobsDep, PipelineDep, TenantDep

router = APIRouter(prefix="/v1/rag/jobs", tags=["rag"])
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


@router.post("", response_model=GenerationJobStatus, status_code=status.HTTP_202_ACCEPTED)
async def submit_generation_job(
    body: RagJobRequest,
    response: Response,
    store: GenerationJobsDep,
    pipeline: PipelineDep,
    tenant: TenantDep,
) -> GenerationJobStatus:
    if body.model is not None or body.tier is not None:  # refused now, not when the job runs
        model_router.choose(body, tenant, pipeline.settings)
    with tenancy.tenant_errors(tenant):
        job = await generation_jobs_service.submit(body, tenant, store=store, settings=pipeline.settings)
    response.headers["Location"] = f"/v1/rag/jobs/{job.job_id}"
    return job


@router.get("/{job_id}", response_model=GenerationJobStatus)
async def generation_job(job_id: JobId, store: GenerationJobsDep, tenant: TenantDep) -> GenerationJobStatus:
    return await generation_jobs_service.status(job_id, tenant, store=store)


@router.get(
    "/{job_id}/result",
    response_model=RagAnswer,
    responses={409: {"description": "The job is still queued or running, or it failed."}},
)
async def generation_job_result(job_id: JobId, store: GenerationJobsDep, tenant: TenantDep) -> RagAnswer:
    return await generation_jobs_service.result(job_id, tenant, store=store)
