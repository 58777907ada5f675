from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from rag_common.app import create_service_app

from .batching import DynamicBatcher
from .ports import Embedder
from .routes import router
from .settings import Settings


class State(TypedDict):
    embedder: Embedder
    batcher: DynamicBatcher
    settings: Settings


def load_embedder(settings: Settings) -> Embedder:
    from .adapters.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        model_name=settings.model_name,
        model_path=settings.model_path,
        device=settings.device,
        batch_size=settings.batch_size,
        normalize=settings.normalize,
    )


def create_app(settings: Settings | None = None, embedder: Embedder | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        model = embedder or await run_in_threadpool(load_embedder, settings)
        batcher = DynamicBatcher(
            model, max_batch=settings.batch_max_size, max_wait_s=settings.batch_max_wait_ms / 1000
        )
        batcher.start()
        try:
            yield {"embedder": model, "batcher": batcher, "settings": settings}
        finally:
            await batcher.aclose()

    return create_service_app(
        service="embedding",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
        description="Text to vectors with sentence-transformers.",
    )
