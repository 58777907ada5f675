"""Builds a FastAPI app with everything a platform service shares."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI

from rag_common.errors import add_exception_handlers
from rag_common.health import ReadyCheck, health_router, service_version
from rag_common.logs import configure_logging
from rag_common.metrics import SERVICE_INFO, PrometheusMiddleware
from rag_common.middleware import BodySizeLimitMiddleware, RequestIdMiddleware
from rag_common.settings import ServiceSettings
from rag_common.telemetry import instrument_app, setup_tracing

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def create_service_app(
    *,
    service: str,
    settings: ServiceSettings,
    lifespan: Lifespan,
    routers: Sequence[APIRouter],
    ready_check: ReadyCheck | None = None,
    description: str = "",
) -> FastAPI:
    """JSON logs, tracing, metrics, request ids, body limits, problem+json errors and health probes."""
    configure_logging(service, settings.log_level)
    provider = setup_tracing(service)
    app = FastAPI(title=f"rag-{service}", description=description, lifespan=lifespan)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(RequestIdMiddleware)
    # Outermost of ours: serves /metrics before request ids and body limits, and times everything else.
    app.add_middleware(PrometheusMiddleware)
    add_exception_handlers(app)
    version = service_version(service)
    SERVICE_INFO.labels(service=service, version=version).set(1)
    app.include_router(health_router(ready_check, version=version))
    for router in routers:
        app.include_router(router)
    instrument_app(app, provider)
    return app
