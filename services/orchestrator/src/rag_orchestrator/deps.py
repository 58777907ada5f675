from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from rag_common.errors import ServiceUnavailable

from . import safety_policy, tenancy
from .adapters.http_clients import EmbeddingClient, LlmClient
from .generation_jobs import GenerationJobStore
from .jobs import JobRunner
from .pipeline import Pipeline


async def get_pipeline(request: Request) -> Pipeline:
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
    policy: Annotated[
        str | None,
        Header(
            alias=safety_policy.POLICY_HEADER,
            description="Set by the gateway from the caller's key: the safety policy it names.",
        ),
    ] = None,
) -> str:
    resolved = tenancy.tenant_from(tenant)
    tenancy.set_current(resolved)
    safety_policy.set_current(safety_policy.policy_from(policy))
    return resolved


async def get_jobs(request: Request) -> JobRunner:
    jobs: JobRunner | None = request.state.jobs
    if jobs is None:
        raise ServiceUnavailable(
            "Ingestion jobs need Redis: set ORCHESTRATOR_REDIS_URL.", extra={"service": "redis"}
        )
    return jobs


async def get_generation_jobs(request: Request) -> GenerationJobStore:
    store: GenerationJobStore | None = request.state.generation_jobs
    if store is None:
        raise ServiceUnavailable(
            "Generation jobs need Redis: set ORCHESTRATOR_REDIS_URL.", extra={"service": "redis"}
        )
    return store


async def get_embedding_api(request: Request) -> EmbeddingClient:
    client: EmbeddingClient = request.state.embedding_api
    return client


async def get_llm_api(request: Request) -> LlmClient:
    client: LlmClient = request.state.llm_api
    return client


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
EmbeddingApiDep = Annotated[EmbeddingClient, Depends(get_embedding_api)]
LlmApiDep = Annotated[LlmClient, Depends(get_llm_api)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]
GenerationJobsDep = Annotated[GenerationJobStore, Depends(get_generation_jobs)]
TenantDep = Annotated[str, Depends(get_tenant)]
