from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from rag_common.app import create_service_app
from rag_common.breaker import CircuitBreaker
from rag_common.model_slots import ModelSlot, ModelVersion, version_id

from .admission import AdmissionGate
from .backends import BackendFactory, build_backend
from .ports import ChatBackend, SamplingDefaults
from .routes import admin_router
from .routes import router as api_router
from .routing import ModelEntry, ModelRouter, RetryPolicy
from .settings import Settings


class State(TypedDict):
    router: ModelRouter
    defaults: SamplingDefaults
    settings: Settings
    factory: BackendFactory


def model_slot(settings: Settings, version: ModelVersion[ChatBackend]) -> ModelSlot[ChatBackend]:
    return ModelSlot(
        service="llm",
        name=version.model.model_name,
        first=version,
        close=_close_backend,
        drain_timeout_s=settings.swap_drain_timeout_s,
    )


async def _close_backend(backend: ChatBackend) -> None:
    await backend.aclose()


def model_router(settings: Settings, slots: Sequence[tuple[ModelSlot[ChatBackend], bool]]) -> ModelRouter:
    """One breaker per model, and a bounded wait queue in front of each local one (`bool`)."""
    entries = [
        ModelEntry(
            slot=slot,
            breaker=CircuitBreaker(
                failure_threshold=settings.breaker_failures,
                cooldown_s=settings.breaker_cooldown_s,
                name=f"llm:{slot.name}",
            ),
            gate=AdmissionGate(model=slot.name, max_waiting=settings.max_queue) if local else None,
        )
        for slot, local in slots
    ]
    retry = RetryPolicy(retries=settings.upstream_retries, backoff_s=settings.retry_backoff_s)
    return ModelRouter(entries, fallbacks=settings.fallbacks, retry=retry)


def _borrowed(backend: ChatBackend) -> ModelVersion[ChatBackend]:
    """A backend the caller gave (tests): served, never closed by the service."""
    version = version_id(backend.model_name, {"given": type(backend).__qualname__})
    return ModelVersion(model=backend, version=version, owned=False)


def create_app(
    settings: Settings | None = None,
    backend: ChatBackend | None = None,
    *,
    backends: Sequence[ChatBackend] | None = None,
    factory: BackendFactory = build_backend,
) -> FastAPI:
    """`backend` or `backends` replace the ones the settings name (tests): each is treated as a local
    model (queued), the first is the default, and the caller owns and closes them. `factory` builds
    the backends of the settings and of model swaps."""
    settings = settings or Settings()
    defaults = SamplingDefaults(
        max_tokens=settings.default_max_tokens, temperature=settings.default_temperature
    )
    given = [backend] if backend is not None else list(backends or [])

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        async with AsyncExitStack() as stack:
            slots = await _open_slots(settings, given, factory, stack)
            router = model_router(settings, slots)
            yield {"router": router, "defaults": defaults, "settings": settings, "factory": factory}

    return create_service_app(
        service="llm",
        settings=settings,
        lifespan=lifespan,
        routers=[api_router, admin_router],
        description="OpenAI-shaped chat completions and grounded (RAG) completions over pluggable backends.",
    )


async def _open_slots(
    settings: Settings, given: Sequence[ChatBackend], factory: BackendFactory, stack: AsyncExitStack
) -> list[tuple[ModelSlot[ChatBackend], bool]]:
    """A slot per model with its first version; each is closed with the stack, even if a later one fails."""
    slots: list[tuple[ModelSlot[ChatBackend], bool]] = []
    for backend in given:
        slot = model_slot(settings, _borrowed(backend))
        stack.push_async_callback(slot.aclose)  # closes only versions swapped in since
        slots.append((slot, True))
    if given:
        return slots
    for spec in settings.model_specs():
        made = await run_in_threadpool(factory, spec, settings)
        slot = model_slot(
            settings, ModelVersion(model=made, version=version_id(spec.name, spec.fingerprint()))
        )
        stack.push_async_callback(slot.aclose)
        slots.append((slot, spec.local))
    return slots
