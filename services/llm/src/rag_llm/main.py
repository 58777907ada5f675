from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from rag_common.app import create_service_app

from .backends import build_backend
from .ports import ChatBackend, SamplingDefaults
from .routes import router
from .settings import Settings


class State(TypedDict):
    backend: ChatBackend
    defaults: SamplingDefaults


def create_app(settings: Settings | None = None, backend: ChatBackend | None = None) -> FastAPI:
    """`backend` replaces the one `settings.backend` names (tests); the caller then owns and closes it."""
    settings = settings or Settings()
    defaults = SamplingDefaults(
        max_tokens=settings.default_max_tokens, temperature=settings.default_temperature
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        if backend is not None:
            yield {"backend": backend, "defaults": defaults}
            return
        built = await run_in_threadpool(build_backend, settings)
        try:
            yield {"backend": built, "defaults": defaults}
        finally:
            await built.aclose()

    return create_service_app(
        service="llm",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
        description="OpenAI-shaped chat completions and grounded (RAG) completions over a pluggable backend.",
    )
