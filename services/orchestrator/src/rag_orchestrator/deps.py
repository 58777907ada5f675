from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from rag_common.errors import ServiceUnavailable

from . import tenancy
from .adapters.http_clients import EmbeddingClient, LlmClient
from .jobs import JobRunner
from .pipeline import Pipeline


def get_pipeline(request: Request) -> Pipeline:
    pipeline: Pipeline = request.state.pipeline
    return pipeline


async def get_tenant(
    tenant: Annotated[
        str | None,
        Header(
            alias=tenancy.TENANT_HEADER,
            description="Set by the gateway from the caller's key; absent for direct internal calls.",
        ),
    ] = None,
) -> str:
    resolved = tenancy.tenant_from(tenant)
    tenancy.set_current(resolved)
    return resolved


def get_jobs(request: Request) -> JobRunner:
    jobs: JobRunner | None = request.state.jobs
    if jobs is None:
        raise ServiceUnavailable(
            "Ingestion jobs need Redis: set ORCHESTRATOR_REDIS_URL.", extra={"service": "redis"}
        )
    return jobs


def get_embedding_api(request: Request) -> EmbeddingClient:
    client: EmbeddingClient = request.state.embedding_api
    return client


def get_llm_api(request: Request) -> LlmClient:
    client: LlmClient = request.state.llm_api
    return client


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
EmbeddingApiDep = Annotated[EmbeddingClient, Depends(get_embedding_api)]
LlmApiDep = Annotated[LlmClient, Depends(get_llm_api)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]
TenantDep = Annotated[str, Depends(get_tenant)]
