from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI, Request
from redis.exceptions import RedisError

from rag_common.app import create_service_app
from rag_common.http import ServiceClient
from rag_common.telemetry import setup_tracing

from .adapters import redis_store
from .ports import ApiKeyRecord, KeyStore, RateLimiter
from .routes import router
from .settings import Settings


class State(TypedDict):
    orchestrator: ServiceClient
    keys: KeyStore
    limiter: RateLimiter
    redis: redis_store.Redis


async def redis_ready(request: Request) -> str | None:
    try:
        await request.state.redis.ping()
    except RedisError:
        return "redis unreachable"
    return None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        redis = redis_store.connect(settings.redis_url, settings.redis_timeout_s)
        keys = redis_store.RedisKeyStore(redis)
        if settings.dev_api_key and settings.dev_api_key.get_secret_value():
            await keys.register(
                settings.dev_api_key.get_secret_value(), ApiKeyRecord(tenant="dev", name="development")
            )
        orchestrator = ServiceClient(
            "orchestrator",
            settings.orchestrator_url,
            timeout_s=settings.orchestrator_timeout_s,
            connect_timeout_s=settings.upstream_connect_timeout_s,
            retries=settings.upstream_retries,
            tracer_provider=setup_tracing("gateway"),
        )
        limiter = redis_store.RedisRateLimiter(
            redis,
            per_minute=settings.rate_limit_per_minute,
            burst=settings.rate_limit_burst or settings.rate_limit_per_minute,
        )
        try:
            yield {"orchestrator": orchestrator, "keys": keys, "limiter": limiter, "redis": redis}
        finally:
            await orchestrator.aclose()
            await redis.aclose()

    return create_service_app(
        service="gateway",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
        ready_check=redis_ready,
        description="The public entry of the RAG platform: API keys, rate limits, RAG and OpenAI-compatible endpoints.",
    )
