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
from rag_common.telemetry import setup_tracing

from .adapters import redis_cache
from .adapters.cached_embedder import CachedEmbedder
from .adapters.http_clients import EmbeddingClient, LlmClient, RetrievalClient, SafetyClient
from .adapters.redis_cache import RedisCache
from .adapters.redis_jobs import RedisJobStore
from .cache import NoCache
from .jobs import JobRunner
from .pipeline import Pipeline
from .ports import Cache
from .routes import router
from .settings import Settings

logger = logging.getLogger(__name__)


class State(TypedDict):
    pipeline: Pipeline
    jobs: JobRunner | None
    embedding_api: EmbeddingClient
    llm_api: LlmClient


def _client(settings: Settings, service: str, base_url: str, timeout_s: float | None = None) -> ServiceClient:
    return ServiceClient(
        service,
        base_url,
        timeout_s=timeout_s or settings.upstream_timeout_s,
        connect_timeout_s=settings.upstream_connect_timeout_s,
        retries=settings.upstream_retries,
        tracer_provider=setup_tracing("orchestrator"),
    )


def _cache(settings: Settings, redis: Redis | None) -> Cache:
    if redis is None or not settings.cache_enabled:
        return NoCache()
    return RedisCache(redis, ttl_s=settings.cache_ttl_s)


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
            cache = _cache(settings, redis)
            pipeline = Pipeline(
                embedder=CachedEmbedder(EmbeddingClient(clients["embedding"]), cache, namespace="default"),
                retriever=RetrievalClient(clients["retrieval"]),
                generator=LlmClient(clients["llm"]),
                safety=SafetyClient(clients["safety"]),
                settings=settings,
                cache=cache,
            )
            jobs = await _start_jobs(settings, redis, pipeline)
            if jobs is not None:
                stack.push_async_callback(jobs.aclose)
            yield {
                "pipeline": pipeline,
                "jobs": jobs,
                "embedding_api": EmbeddingClient(clients["embedding"]),
                "llm_api": LlmClient(clients["llm"]),
            }

    return create_service_app(
        service="orchestrator",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
        description="The RAG workflow and ingestion.",
    )
