"""RAG generation as background jobs: submitted, queued in Redis, answered later by any replica.

A job keeps its tenant and its query with the collection already scoped to that tenant, so the
worker answers exactly as the synchronous endpoint would for the same caller, and another tenant
asking for the job finds nothing (404, never 403).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from rag_common import metrics
from rag_common.contracts import GenerationJobStatus, RagAnswer, RagJobRequest
from rag_common.errors import Conflict, NotFound

from . import safety_policy, tenancy
from . import webhooks as webhooks_service
from .settings import Settings

QUEUE = "generation_jobs"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One queue entry handed to a worker."""

    entry_id: str
    job_id: str


class GenerationJobStore(Protocol):
    async def create(self, status: GenerationJobStatus, request: RagJobRequest) -> None: ...

    async def get(self, job_id: str) -> GenerationJobStatus | None: ...

    async def request(self, job_id: str) -> RagJobRequest | None: ...

    async def result(self, job_id: str) -> RagAnswer | None: ...

    async def save(self, status: GenerationJobStatus, result: RagAnswer | None = None) -> None: ...

    async def ensure_group(self) -> None: ...

    async def take(self, consumer: str, *, idle_ms: int, block_ms: int) -> list[Delivery]: ...

    async def keep(self, consumer: str, entry_id: str) -> None: ...

    async def done(self, entry_id: str) -> None: ...

    async def requeue(self, status: GenerationJobStatus, entry_id: str) -> None: ...

    async def depth(self) -> int: ...


class GenerationJobNotFound(NotFound):
    type_slug = "job-not-found"

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"Generation job '{job_id}' does not exist (finished jobs expire).", extra={"job_id": job_id}
        )


class JobNotSucceeded(Conflict):
    """The result of a job still queued or running, or of one that failed."""

    type_slug = "job-not-succeeded"

    def __init__(self, status: GenerationJobStatus) -> None:
        detail = (
            f"Generation job '{status.job_id}' failed: {status.error.detail}"
            if status.error is not None
            else f"Generation job '{status.job_id}' is {status.status}; poll its status until it has succeeded."
        )
        super().__init__(detail, extra={"job_id": status.job_id, "job_status": status.status})


async def submit(
    body: RagJobRequest, tenant: str, *, store: GenerationJobStore, settings: Settings
) -> GenerationJobStatus:
    if body.webhook_url is not None:
        webhooks_service.check_url(body.webhook_url, settings)
    scoped = body.model_copy(update={"collection": tenancy.physical(tenant, body.collection)})
    status = GenerationJobStatus(
        job_id=uuid.uuid4().hex,
        collection=body.collection,
        tenant=tenant,
        safety_policy=safety_policy.current(),
    )
    await store.create(status, scoped)
    metrics.QUEUE_DEPTH.labels(queue=QUEUE).set(await store.depth())
    return status


async def status(job_id: str, tenant: str, *, store: GenerationJobStore) -> GenerationJobStatus:
    found = await store.get(job_id)
    if found is None or found.tenant != tenant:
        raise GenerationJobNotFound(job_id)
    return found


async def result(job_id: str, tenant: str, *, store: GenerationJobStore) -> RagAnswer:
    found = await status(job_id, tenant, store=store)
    answer = await store.result(job_id) if found.status == "succeeded" else None
    if answer is None:
        raise JobNotSucceeded(found)
    return answer
