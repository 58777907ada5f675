from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from redis.asyncio import Redis

from rag_common.app import create_service_app
from rag_common.errors import ServiceUnavailable
from rag_common.http import ServiceClient
from rag_common.redis_pipelined import PipelinedRedis
from rag_common.telemetry import setup_tracing

from .adapters import redis_cache
from .adapters.cached_embedder import CachedEmbedder
from .adapters.deadline_safety import DeadlineSafety
from .adapters.http_clients import EmbeddingClient, LlmClient, RerankClient, RetrievalClient, SafetyClient
from .adapters.http_webhook import HttpWebhookSender
from .adapters.redis_cache import RedisCache
from .adapters.redis_generation_jobs import RedisGenerationJobs
from .adapters.redis_jobs import RedisJobStore
from .adapters.redis_memory import memory_for
from .adapters.redis_reembed import RedisReembedStore
from .cache import NoCache
from .embedding_model import EmbeddingModel
from .generation_job_routes import router as generation_job_router
from .generation_jobs import GenerationJobStore
from .generation_worker import GenerationWorker
from .jobs import JobRunner
from .pipeline import Pipeline
from .ports import Cache
from .reembed import ReembedRunner
from .reembed_routes import router as reembed_router
from .routes import router
from .settings import Settings

logger = logging.getLogger(__name__)


class State(TypedDict):
    pipeline: Pipeline
    jobs: JobRunner | None
    generation_jobs: GenerationJobStore | None
    reembed: ReembedRunner | None
    embedding_api: EmbeddingClient
    llm_api: LlmClient


def _client(settings: Settings, service: str, base_url: str, timeout_s: float | None = None) -> ServiceClient:
    return ServiceClient.from_settings(
        service, base_url, settings, timeout_s=timeout_s, tracer_provider=setup_tracing("orchestrator")
    )


def _cache(settings: Settings, redis: Redis | None, stack: AsyncExitStack) -> Cache:
    if redis is None or not settings.cache_enabled:
        return NoCache()
    answers = PipelinedRedis(settings.redis_url, settings.redis_timeout_s)  # the per-request read
    stack.push_async_callback(answers.aclose)
    return RedisCache(
        redis,
        ttl_s=settings.cache_ttl_s,
        mirror_budget_bytes=settings.semantic_cache_mirror_mb * 2**20,
        hot=answers,
    )


async def _start_jobs(settings: Settings, redis: Redis | None, pipeline: Pipeline) -> JobRunner | None:
    """Ingestion jobs live in Redis; without it there are none (their endpoints answer 503)."""
    if redis is None:
        return None
    runner = JobRunner(
        RedisJobStore(redis, ttl_s=settings.job_ttl_s),
        pipeline,
        batch_documents=settings.job_batch_documents,
        backoff_s=settings.job_retry_backoff_s,
        concurrency=settings.job_concurrency,
    )
    try:
        resumed = await runner.resume()
    except ServiceUnavailable as exc:
        logger.warning("unfinished ingestion jobs not resumed yet: %s", exc.detail)
    else:
        if resumed:
            logger.info("resumed %d unfinished ingestion jobs", resumed)
    return runner


async def _start_generation_jobs(
    settings: Settings, redis: Redis | None, pipeline: Pipeline, stack: AsyncExitStack
) -> GenerationJobStore | None:
    """Generation jobs live in Redis; without it there are none (their endpoints answer 503)."""
    if redis is None or not settings.redis_url:
        return None
    # Workers block on the queue for a poll, longer than the per-command timeout requests use.
    queue = redis_cache.connect(settings.redis_url, settings.redis_timeout_s + settings.generation_job_poll_s)
    stack.push_async_callback(queue.aclose)
    sender = HttpWebhookSender(timeout_s=settings.webhook_timeout_s)
    stack.push_async_callback(sender.aclose)
    worker = GenerationWorker(
        RedisGenerationJobs(queue, ttl_s=settings.generation_job_ttl_s), pipeline, sender, settings=settings
    )
    await worker.start()
    stack.push_async_callback(worker.aclose)
    return RedisGenerationJobs(redis, ttl_s=settings.generation_job_ttl_s)


async def _start_reembed(
    settings: Settings,
    redis: Redis | None,
    embedding: EmbeddingClient,
    retrieval: RetrievalClient,
    cache: Cache,
) -> ReembedRunner | None:
    """Re-embedding jobs live in Redis, like ingestion jobs; unfinished ones resume here."""
    if redis is None:
        return None
    runner = ReembedRunner(
        RedisReembedStore(redis, ttl_s=settings.job_ttl_s),
        embedder=embedding,
        retrieval=retrieval,
        cache=cache,
        batch_points=settings.reembed_batch_points,
        backoff_s=settings.job_retry_backoff_s,
    )
    try:
        await runner.resume()
    except ServiceUnavailable as exc:
        logger.warning("unfinished re-embedding jobs not resumed yet: %s", exc.detail)
    return runner


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        async with AsyncExitStack() as stack:
            clients = {
                name: _client(settings, name, url, timeout)
                for name, url, timeout in (
                    ("embedding", settings.embedding_url, None),
                    ("retrieval", settings.retrieval_url, None),
                    ("llm", settings.llm_url, settings.llm_timeout_s),
                    ("safety", settings.safety_url, None),
                )
            }
            for client in clients.values():
                stack.push_async_callback(client.aclose)
            redis = (
                redis_cache.connect(settings.redis_url, settings.redis_timeout_s)
                if settings.redis_url
                else None
            )
            if redis is not None:
                stack.push_async_callback(redis.aclose)
            cache = _cache(settings, redis, stack)
            embedding_model = EmbeddingModel(ttl_s=settings.embedding_model_ttl_s)
            embedding = EmbeddingClient(clients["embedding"], embedding_model)
            retrieval = RetrievalClient(clients["retrieval"], embedding_model)
            pipeline = Pipeline(
                embedder=CachedEmbedder(embedding, cache, namespace=embedding_model),
                retriever=retrieval,
                generator=LlmClient(clients["llm"]),
                safety=DeadlineSafety(SafetyClient(clients["safety"]), timeout_s=settings.safety_timeout_s),
                settings=settings,
                cache=cache,
                memory=memory_for(redis, max_turns=settings.memory_turns, ttl_s=settings.memory_ttl_s),
                reranker=RerankClient(clients["embedding"]) if settings.rerank_enabled else None,
            )
            jobs = await _start_jobs(settings, redis, pipeline)
            if jobs is not None:
                stack.push_async_callback(jobs.aclose)
            generation_jobs = await _start_generation_jobs(settings, redis, pipeline, stack)
            reembed = await _start_reembed(settings, redis, embedding, retrieval, cache)
            if reembed is not None:
                stack.push_async_callback(reembed.aclose)
            yield {
                "pipeline": pipeline,
                "jobs": jobs,
                "generation_jobs": generation_jobs,
                "reembed": reembed,
                "embedding_api": embedding,
                "llm_api": LlmClient(clients["llm"]),
            }

    return create_service_app(
        service="orchestrator",
        settings=settings,
        lifespan=lifespan,
        routers=[router, generation_job_router, reembed_router],
        description="The RAG workflow and ingestion.",
    )
