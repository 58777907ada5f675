"""Builds a FastAPI app with everything a platform service shares."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI

from rag_common.deprecation import deprecate
from rag_common.errors import add_exception_handlers
from rag_common.health import ReadyCheck, health_router, service_version
from rag_common.logs import configure_logging
from rag_common.metrics import SERVICE_INFO, PrometheusMiddleware
from rag_common.middleware import BodySizeLimitMiddleware, InternalTokenMiddleware, RequestIdMiddleware
from rag_common.settings import ServiceSettings
from rag_common.telemetry import fastapi_telemetry, setup_tracing

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


class MissingInternalToken(RuntimeError):
    """Production refuses to start a service without the shared internal token."""


def _require_token(service: str, settings: ServiceSettings) -> str | None:
    """The shared internal token, or None when unset (an empty value counts as unset)."""
    token = settings.internal_token.get_secret_value() if settings.internal_token else None
    if not token and settings.environment == "production":
        raise MissingInternalToken(
            f"{service}: RAG_INTERNAL_TOKEN is not set. In production every service needs the shared "
            "internal token: internal services refuse calls without it and clients send it."
        )
    return token or None


def create_service_app(
    *,
    service: str,
    settings: ServiceSettings,
    lifespan: Lifespan,
    routers: Sequence[APIRouter],
    ready_check: ReadyCheck | None = None,
    description: str = "",
    public: bool = False,
) -> FastAPI:
    """JSON logs, tracing, metrics, request ids, body limits, problem+json errors and health probes.

    Unless `public` (the gateway), a service with an internal token configured refuses requests
    without it; in production a token is required either way (the gateway sends it downstream).
    """
    token = _require_token(service, settings)
    configure_logging(service, settings.log_level)
    provider = setup_tracing(service)
    app = FastAPI(
        title=f"rag-{service}",
        description=description,
        lifespan=lifespan,
        telemetry=fastapi_telemetry(provider),
    )
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    if token is not None and not public:
        app.add_middleware(InternalTokenMiddleware, token=token)
    app.add_middleware(RequestIdMiddleware)
    # Outermost of ours: serves /metrics before request ids, tokens and body limits, and times the rest.
    app.add_middleware(PrometheusMiddleware)
    add_exception_handlers(app)
    version = service_version(service)
    SERVICE_INFO.labels(service=service, version=version).set(1)
    app.include_router(health_router(ready_check, version=version))
    for router in routers:
        app.include_router(router)
    if settings.deprecated_routes:
        deprecate(app, settings.deprecated_routes)
    return app
