"""Builds a FastAPI app with everything a platform service shares."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI

from rag_common.errors import add_exception_handlers
from rag_common.health import ReadyCheck, health_router
from rag_common.logs import configure_logging
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
    """JSON logs, tracing, request ids, body limits, problem+json errors and health probes."""
    configure_logging(service, settings.log_level)
    provider = setup_tracing(service)
    app = FastAPI(title=f"rag-{service}", description=description, lifespan=lifespan)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    add_exception_handlers(app)
    app.include_router(health_router(ready_check))
    for router in routers:
        app.include_router(router)
    instrument_app(app, provider)
    return app
