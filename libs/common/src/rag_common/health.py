"""Liveness (`/healthz`) and readiness (`/readyz`) endpoints, the same in every service."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from rag_common.errors import problem_response

ReadyCheck = Callable[[Request], Awaitable[str | None]]
UNKNOWN_VERSION = "unknown"


def service_version(service: str) -> str:
    """The installed version of the `rag-<service>` package, or "unknown" when it is not installed."""
    try:
        return importlib.metadata.version(f"rag-{service}")
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


def mark_draining(app: FastAPI) -> None:
    """From now on `/readyz` answers 503, so load balancers stop sending new requests (see `rag_common.serve`)."""
    app.state.draining = True


def is_draining(app: FastAPI) -> bool:
    return bool(getattr(app.state, "draining", False))


def health_router(ready_check: ReadyCheck | None = None, *, version: str = UNKNOWN_VERSION) -> APIRouter:
    """`ready_check` returns None when ready, else the reason it is not; `/healthz` reports the version."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": version}

    @router.get("/readyz", response_model=None)
    async def readyz(request: Request) -> JSONResponse | dict[str, str]:
        if is_draining(request.app):
            return problem_response(
                request, status=503, title="Service Unavailable", detail="draining", type_slug="draining"
            )
        reason = await ready_check(request) if ready_check else None
        if reason:
            return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
        return {"status": "ready"}

    return router
