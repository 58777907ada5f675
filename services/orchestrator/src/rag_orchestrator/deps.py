from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from rag_common.errors import ServiceUnavailable

from . import router as model_router
from . import safety_policy, tenancy
from .adapters.http_clients import EmbeddingClient, LlmClient
from .generation_jobs import GenerationJobStore
from .jobs import JobRunner
from .pipeline import Pipeline


async def get_pipeline(request: Request) -> Pipeline:
    pipeline: Pipeline = request.state.pipeline
    return pipeline


TENANT_NOTE = "Set by the gateway from the caller's key; absent for direct internal calls."
POLICY_NOTE = "Set by the gateway from the caller's key: the safety policy it names."
CALLER_NOTE = "Set by the gateway: the caller's key id or hashed subject, sticky key of A/B experiments."


def _enter_tenant(tenant: str | None, policy: str | None) -> str:
    """The request's tenant and safety policy, from the gateway's headers, made current."""
    resolved = tenancy.tenant_from(tenant)
    tenancy.set_current(resolved)
    safety_policy.set_current(safety_policy.policy_from(policy))
    return resolved


async def get_tenant(
    tenant: Annotated[str | None, Header(alias=tenancy.TENANT_HEADER, description=TENANT_NOTE)] = None,
    policy: Annotated[str | None, Header(alias=safety_policy.POLICY_HEADER, description=POLICY_NOTE)] = None,
) -> str:
    return _enter_tenant(tenant, policy)


@dataclass(frozen=True, slots=True)
class Asked:
    """What a RAG or chat request is asked with: the pipeline, the caller's tenant and its id."""

    pipeline: Pipeline
    tenant: str
    caller: str | None


async def get_asked(request: Request) -> Asked:
    """`get_tenant` and the pipeline and caller, read in one dependency: on a cache hit FastAPI
    resolving them as five dependencies and header parameters took 9% of the orchestrator's CPU.
    Routes using it document the headers with `ASKED_HEADERS`."""
    headers = request.headers
    tenant = _enter_tenant(headers.get(tenancy.TENANT_HEADER), headers.get(safety_policy.POLICY_HEADER))
    return Asked(request.state.pipeline, tenant, headers.get(model_router.CALLER_HEADER))


def _optional_header(name: str, description: str) -> dict[str, Any]:
    """An optional string header as FastAPI's `Header()` parameters appear in OpenAPI."""
    title = "-".join(part.capitalize() for part in name.split("-"))
    schema = {"anyOf": [{"type": "string"}, {"type": "null"}], "description": description, "title": title}
    return {"description": description, "in": "header", "name": name, "required": False, "schema": schema}


ASKED_HEADERS: dict[str, Any] = {
    "parameters": [
        _optional_header(model_router.CALLER_HEADER, CALLER_NOTE),
        _optional_header(tenancy.TENANT_HEADER, TENANT_NOTE),
        _optional_header(safety_policy.POLICY_HEADER, POLICY_NOTE),
    ]
}


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
AskedDep = Annotated[Asked, Depends(get_asked)]
