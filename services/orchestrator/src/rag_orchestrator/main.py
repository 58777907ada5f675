from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI

from rag_common.app import create_service_app
from rag_common.http import ServiceClient
from rag_common.telemetry import setup_tracing

from .adapters import redis_cache
from .adapters.cached_embedder import CachedEmbedder
from .adapters.http_clients import EmbeddingClient, LlmClient, RetrievalClient, SafetyClient
from .adapters.redis_cache import RedisCache
from .cache import NoCache
from .pipeline import Pipeline
from .ports import Cache
from .routes import router
from .settings import Settings


class State(TypedDict):
    pipeline: Pipeline


def _client(settings: Settings, service: str, base_url: str, timeout_s: float | None = None) -> ServiceClient:
    return ServiceClient(
        service,
        base_url,
        timeout_s=timeout_s or settings.upstream_timeout_s,
        connect_timeout_s=settings.upstream_connect_timeout_s,
        retries=settings.upstream_retries,
        tracer_provider=setup_tracing("orchestrator"),
    )


def _cache(settings: Settings) -> Cache:
    if not (settings.cache_enabled and settings.redis_url):
        return NoCache()
    return RedisCache(
        redis_cache.connect(settings.redis_url, settings.redis_timeout_s), ttl_s=settings.cache_ttl_s
    )


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
            cache = _cache(settings)
            if isinstance(cache, RedisCache):
                stack.push_async_callback(cache.aclose)
            yield {
                "pipeline": Pipeline(
                    embedder=CachedEmbedder(
                        EmbeddingClient(clients["embedding"]), cache, namespace="default"
                    ),
                    retriever=RetrievalClient(clients["retrieval"]),
                    generator=LlmClient(clients["llm"]),
                    safety=SafetyClient(clients["safety"]),
                    settings=settings,
                    cache=cache,
                )
            }

    return create_service_app(
        service="orchestrator",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
        description="The RAG workflow and ingestion.",
    )
