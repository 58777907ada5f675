from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from rag_common.contracts import CollectionName, ReembedStatus
from rag_common.errors import ServiceUnavailable

from . import tenancy
from .deps import TenantDep
from .reembed import ReembedJobNotFound, ReembedRunner

router = APIRouter(prefix="/v1/collections", tags=["collections"])
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


def get_reembed(request: Request) -> ReembedRunner:
    runner: ReembedRunner | None = request.state.reembed
    if runner is None:
        raise ServiceUnavailable(
            "Re-embedding jobs need Redis: set ORCHESTRATOR_REDIS_URL.", extra={"service": "redis"}
        )
    return runner


ReembedDep = Annotated[ReembedRunner, Depends(get_reembed)]


def _unscoped(job: ReembedStatus, tenant: str) -> ReembedStatus:
    return job.model_copy(update={"collection": tenancy.logical(tenant, job.collection)})


@router.post("/{collection}/reembed", response_model=ReembedStatus, status_code=status.HTTP_202_ACCEPTED)
async def submit_reembed_job(
    collection: CollectionName, runner: ReembedDep, tenant: TenantDep, response: Response
) -> ReembedStatus:
    with tenancy.tenant_errors(tenant):
        job = await runner.submit(tenancy.physical(tenant, collection), tenant)
    response.headers["Location"] = f"/v1/collections/{collection}/reembed/{job.job_id}"
    return _unscoped(job, tenant)


@router.get("/{collection}/reembed/{job_id}", response_model=ReembedStatus)
async def reembed_job(
    collection: CollectionName, job_id: JobId, runner: ReembedDep, tenant: TenantDep
) -> ReembedStatus:
    job = await runner.status(job_id, tenant)
    if job.collection != tenancy.physical(tenant, collection):
        raise ReembedJobNotFound(job_id)
    return _unscoped(job, tenant)
