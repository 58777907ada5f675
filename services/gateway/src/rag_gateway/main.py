from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisError
from starlette.middleware.cors import CORSMiddleware

from rag_common.app import create_service_app
from rag_common.http import ServiceClient
from rag_common.redis_pipelined import PipelinedRedis
from rag_common.telemetry import setup_tracing

from . import jwt_auth as jwt_service
from .adapters import redis_limits, redis_store
from .admin_routes import router as admin_router
from .deps import count_invalid_request
from .document_routes import router as document_router
from .job_routes import router as job_router
from .ports import ALL_SCOPES, ApiKeyRecord, KeyStore, RateLimiter
from .routes import router
from .settings import Settings
from .timing import ServerTimingMiddleware

DEV_KEY_ID = "dev"
EXPOSED_HEADERS = [
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
    "X-Request-ID",
    "Server-Timing",
    "X-Model",
    "X-Experiment",
    "X-Variant",
]


class State(TypedDict):
    orchestrator: ServiceClient
    keys: KeyStore
    limiter: RateLimiter
    jwt: jwt_service.JwtVerifier | None
    redis: redis_store.Redis
    settings: Settings


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
        keys = redis_store.RedisKeyStore(redis, cached_keys=settings.cached_keys)
        if settings.dev_api_key and settings.dev_api_key.get_secret_value():
            record = ApiKeyRecord(tenant="dev", name="development", key_id=DEV_KEY_ID, scopes=ALL_SCOPES)
            await keys.register(settings.dev_api_key.get_secret_value(), record)
        orchestrator = ServiceClient.from_settings(
            "orchestrator",
            settings.orchestrator_url,
            settings,
            timeout_s=settings.orchestrator_timeout_s,
            tracer_provider=setup_tracing("gateway"),
        )
        admissions = PipelinedRedis(settings.redis_url, settings.redis_timeout_s)
        limiter = redis_limits.RedisRateLimiter(admissions)
        try:
            yield {
                "orchestrator": orchestrator,
                "keys": keys,
                "limiter": limiter,
                "jwt": jwt_service.verifier_from(settings),
                "redis": redis,
                "settings": settings,
            }
        finally:
            await limiter.aclose()
            await admissions.aclose()
            await orchestrator.aclose()
            await redis.aclose()

    app = create_service_app(
        service="gateway",
        settings=settings,
        lifespan=lifespan,
        routers=[router, document_router, job_router, admin_router],
        ready_check=redis_ready,
        public=True,
        description="The public entry of the RAG platform: API keys, rate limits, RAG and OpenAI-compatible endpoints.",
    )
    app.add_exception_handler(RequestValidationError, count_invalid_request)
    app.add_middleware(ServerTimingMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID", "traceparent"],
            expose_headers=EXPOSED_HEADERS,
        )
    return app
