from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from rag_common.app import create_service_app

from .admission import AdmissionGate
from .backends import build_backend
from .breaker import CircuitBreaker
from .ports import ChatBackend, SamplingDefaults
from .routes import router as api_router
from .routing import ModelEntry, ModelRouter, RetryPolicy
from .settings import Settings


class State(TypedDict):
    router: ModelRouter
    defaults: SamplingDefaults


def model_router(settings: Settings, backends: Sequence[tuple[ChatBackend, bool]]) -> ModelRouter:
    """One breaker per backend, and a bounded wait queue in front of each local one (`bool`)."""
    entries = [
        ModelEntry(
            backend=backend,
            breaker=CircuitBreaker(
                failure_threshold=settings.breaker_failures, cooldown_s=settings.breaker_cooldown_s
            ),
            gate=AdmissionGate(model=backend.model_name, max_waiting=settings.max_queue) if local else None,
        )
        for backend, local in backends
    ]
    retry = RetryPolicy(retries=settings.upstream_retries, backoff_s=settings.retry_backoff_s)
    return ModelRouter(entries, fallbacks=settings.fallbacks, retry=retry)


def create_app(
    settings: Settings | None = None,
    backend: ChatBackend | None = None,
    *,
    backends: Sequence[ChatBackend] | None = None,
) -> FastAPI:
    """`backend` or `backends` replace the ones the settings name (tests): each is treated as a local
    model (queued), the first is the default, and the caller owns and closes them."""
    settings = settings or Settings()
    defaults = SamplingDefaults(
        max_tokens=settings.default_max_tokens, temperature=settings.default_temperature
    )
    given = [backend] if backend is not None else list(backends or [])

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        if given:
            yield {"router": model_router(settings, [(b, True) for b in given]), "defaults": defaults}
            return
        async with AsyncExitStack() as stack:
            built: list[tuple[ChatBackend, bool]] = []
            for spec in settings.model_specs():
                made = await run_in_threadpool(build_backend, spec, settings)
                stack.push_async_callback(made.aclose)
                built.append((made, spec.local))
            yield {"router": model_router(settings, built), "defaults": defaults}

    return create_service_app(
        service="llm",
        settings=settings,
        lifespan=lifespan,
        routers=[api_router],
        description="OpenAI-shaped chat completions and grounded (RAG) completions over pluggable backends.",
    )
