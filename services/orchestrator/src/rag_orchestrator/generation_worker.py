"""The workers that answer queued generation jobs, started in the orchestrator's lifespan.

Each worker takes one queue entry at a time, runs the RAG workflow for the job's tenant, saves the
answer or the problem, delivers the webhook, and only then acknowledges the entry: a worker that dies
at any point leaves the entry pending, and another takes it over once it has been idle long enough.
Delivery is therefore at least once; the job's recorded state makes a takeover resume where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, TypeVar

from rag_common import metrics
from rag_common.contracts import (
    GenerationJobEvent,
    GenerationJobStatus,
    JobProblem,
    RagAnswer,
    RagJobRequest,
    RagQuery,
)
from rag_common.errors import ServiceError, ServiceUnavailable
from rag_common.telemetry import tracer

from . import rag as rag_service
from . import router as model_router
from . import safety_policy, tenancy
from . import webhooks as webhooks_service
from .generation_jobs import QUEUE, Delivery, GenerationJobStore
from .pipeline import Pipeline
from .settings import Settings
from .webhooks import WebhookSender

logger = logging.getLogger(__name__)
_tracer = tracer(__name__)
_T = TypeVar("_T")


class _Stopped(Exception):
    """The worker is stopping mid-job: the job goes back to the queue."""


def consumer_name() -> str:
    """Unique per process: a restarted orchestrator is a new consumer and takes its old entries over."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class GenerationWorker:
    def __init__(
        self,
        store: GenerationJobStore,
        pipeline: Pipeline,
        sender: WebhookSender,
        *,
        settings: Settings,
        consumer: str | None = None,
    ) -> None:
        self._store = store
        self._pipeline = pipeline
        self._sender = sender
        self._settings = settings
        self.consumer = consumer or consumer_name()
        self._tasks: list[asyncio.Task[None]] = []
        self._running: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        try:
            await self._store.ensure_group()
        except ServiceUnavailable as exc:
            logger.warning("generation job queue not ready yet: %s", exc.detail)
        self._tasks = [
            asyncio.create_task(self._loop(), name=f"generation-worker-{i}")
            for i in range(self._settings.generation_job_concurrency)
        ]

    async def aclose(self) -> None:
        """Stops the workers; a job cut off mid-run goes back to the queue for the next one.

        Only the job's own work is cancelled, never a worker inside a Redis call: a redis-py command
        cancelled mid-way can leave its pool waiting forever, so each worker leaves after its current
        queue read (at most a poll) and after handing its job back.
        """
        self._stopping.set()
        for task in self._running:
            task.cancel()
        grace_s = 2 * self._settings.generation_job_poll_s + 5
        _, late = await asyncio.wait(self._tasks, timeout=grace_s) if self._tasks else (set(), set())
        for task in late:
            task.cancel()
        if late:  # bounded: a worker stuck in Redis must not hold up the shutdown
            await asyncio.wait(late, timeout=1.0)

    async def _loop(self) -> None:
        settings = self._settings
        while not self._stopping.is_set():
            try:
                deliveries = await self._store.take(
                    self.consumer,
                    idle_ms=int(settings.generation_job_claim_idle_s * 1000),
                    block_ms=int(settings.generation_job_poll_s * 1000),
                )
                metrics.QUEUE_DEPTH.labels(queue=QUEUE).set(await self._store.depth())
                for delivery in deliveries:
                    await self.process(delivery)
            except ServiceUnavailable as exc:
                logger.warning("generation worker waiting: %s", exc.detail)
                await asyncio.sleep(settings.generation_job_poll_s)
            except Exception:
                # A worker must outlive any one job; the entry stays pending and its attempts are bounded.
                logger.exception("generation worker: unexpected error")
                await asyncio.sleep(settings.generation_job_poll_s)

    async def process(self, delivery: Delivery) -> None:
        status = await self._store.get(delivery.job_id)
        request = await self._store.request(delivery.job_id)
        if status is not None and request is not None:
            attempts = status.attempts
            try:
                if self._stopping.is_set():
                    raise _Stopped
                if not status.finished:
                    # One trace per job run: its downstream calls hang together under it.
                    with _tracer.start_as_current_span(
                        "generation-job", attributes={"rag.job.id": status.job_id}
                    ):
                        await self._run(status, request, delivery)
                if status.webhook == "pending" and request.webhook_url:
                    await self._notify(status, request.webhook_url)
            except _Stopped:
                if not status.finished:
                    status.status, status.attempts = "queued", attempts
                status.updated_at = time.time()
                await self._store.requeue(status, delivery.entry_id)
                logger.info("generation job %s handed back to the queue at shutdown", status.job_id)
                return
        await self._store.done(delivery.entry_id)

    async def _interruptible(self, work: Coroutine[Any, Any, _T]) -> _T:
        """The job's own work, in a task `aclose` may cancel."""
        if self._stopping.is_set():
            work.close()
            raise _Stopped
        task = asyncio.create_task(work)
        self._running.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            if task.cancelled() and self._stopping.is_set():
                raise _Stopped from None
            raise
        finally:
            self._running.discard(task)

    async def _run(self, status: GenerationJobStatus, request: RagJobRequest, delivery: Delivery) -> None:
        if status.attempts >= self._settings.generation_job_max_attempts:
            abandoned = JobProblem(
                title="Job Abandoned",
                status=500,
                detail=f"The job was cut off {status.attempts} times without finishing; it is not run again.",
            )
            await self._finish(status, request, None, abandoned)
            return
        status.status, status.attempts, status.updated_at = "running", status.attempts + 1, time.time()
        await self._store.save(status)
        async with self._kept_alive(delivery):
            answer, problem = await self._interruptible(self._answer(status, request))
        await self._finish(status, request, answer, problem)

    async def _answer(
        self, status: GenerationJobStatus, request: RagJobRequest
    ) -> tuple[RagAnswer | None, JobProblem | None]:
        tenancy.set_current(status.tenant)
        safety_policy.set_current(status.safety_policy)
        query = RagQuery.model_validate(request.model_dump(exclude={"webhook_url"}))
        try:
            with tenancy.tenant_errors(status.tenant):
                return await self._with_retries(status, query), None
        except ServiceError as exc:
            logger.error("generation job %s failed: %s", status.job_id, exc.detail)
            return None, JobProblem(title=exc.title, status=exc.status_code, detail=exc.detail)

    async def _with_retries(self, status: GenerationJobStatus, query: RagQuery) -> RagAnswer:
        """Routed like a synchronous query: the job's model, tier, tenant default or experiment."""
        routed = model_router.route(query, status.tenant, self._pipeline)
        backoff_s: Sequence[float] = self._settings.generation_job_retry_backoff_s
        for delay in backoff_s:
            try:
                return await rag_service.answer(query, pipeline=routed.pipeline)
            except ServiceUnavailable as exc:
                status.retries += 1
                logger.warning("generation job %s: %s; retrying in %.1f s", status.job_id, exc.detail, delay)
                await asyncio.sleep(delay)
        return await rag_service.answer(query, pipeline=routed.pipeline)

    async def _finish(
        self,
        status: GenerationJobStatus,
        request: RagJobRequest,
        answer: RagAnswer | None,
        problem: JobProblem | None,
    ) -> None:
        status.status = "succeeded" if answer is not None else "failed"
        status.error = problem
        status.webhook = "pending" if request.webhook_url else "none"
        status.updated_at = time.time()
        await self._store.save(status, answer)

    async def _notify(self, status: GenerationJobStatus, url: str) -> None:
        secret = self._settings.webhook_secret
        answer = await self._store.result(status.job_id)
        if secret is None:
            status.webhook = "failed"
            logger.error("job %s: webhook not sent, ORCHESTRATOR_WEBHOOK_SECRET is unset", status.job_id)
        else:
            event = GenerationJobEvent(job=status, result=answer)
            status.webhook = await self._interruptible(
                webhooks_service.deliver(
                    url,
                    event.model_dump_json().encode(),
                    secret=secret.get_secret_value(),
                    sender=self._sender,
                    backoff_s=self._settings.webhook_retry_backoff_s,
                )
            )
        status.updated_at = time.time()
        await self._store.save(status)

    @contextlib.asynccontextmanager
    async def _kept_alive(self, delivery: Delivery) -> AsyncIterator[None]:
        """Refreshes the entry's claim while the job runs, so no live worker's job is taken over."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(self._settings.generation_job_claim_idle_s / 3)
                with contextlib.suppress(ServiceUnavailable):
                    await self._store.keep(self.consumer, delivery.entry_id)

        heartbeat = asyncio.create_task(beat(), name=f"generation-heartbeat-{delivery.job_id}")
        try:
            yield
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
