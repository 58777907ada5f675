"""Liveness (`/healthz`) and readiness (`/readyz`) endpoints, the same in every service."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

ReadyCheck = Callable[[Request], Awaitable[str | None]]
UNKNOWN_VERSION = "unknown"


def service_version(service: str) -> str:
    """The installed version of the `rag-<service>` package, or "unknown" when it is not installed."""
    try:
        return importlib.metadata.version(f"rag-{service}")
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


def health_router(ready_check: ReadyCheck | None = None, *, version: str = UNKNOWN_VERSION) -> APIRouter:
    """`ready_check` returns None when ready, else the reason it is not; `/healthz` reports the version."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": version}

    @router.get("/readyz", response_model=None)
    async def readyz(request: Request) -> JSONResponse | dict[str, str]:
        reason = await ready_check(request) if ready_check else None
        if reason:
            return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
        return {"status": "ready"}

    return router
