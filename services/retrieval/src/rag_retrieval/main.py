from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypedDict

from fastapi import FastAPI

from rag_common.app import create_service_app

from .adapters.qdrant import QdrantVectorStore
from .adapters.qdrant_edge import QdrantEdgeVectorStore
from .ports import VectorStore
from .routes import router
from .settings import Settings


class State(TypedDict):
    store: VectorStore


def connect_store(settings: Settings) -> VectorStore:
    """A Qdrant server when `qdrant_url` is set, else the embedded `engine` on `qdrant_path`."""
    if not settings.qdrant_url and settings.engine == "edge":
        return QdrantEdgeVectorStore.connect(
            path=str(Path(settings.qdrant_path) / "edge"),
            fusion=settings.fusion,
            bm25_average_terms=settings.bm25_average_terms,
            hybrid_candidates=settings.hybrid_candidates,
        )
    if not settings.qdrant_url:
        Path(settings.qdrant_path).mkdir(parents=True, exist_ok=True)
    api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    return QdrantVectorStore.connect(
        url=settings.qdrant_url,
        path=settings.qdrant_path,
        api_key=api_key,
        timeout_s=settings.qdrant_timeout_s,
        fusion=settings.fusion,
        bm25_average_terms=settings.bm25_average_terms,
        hybrid_candidates=settings.hybrid_candidates,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        store = connect_store(settings)
        try:
            yield {"store": store}
        finally:
            await store.close()

    return create_service_app(
        service="retrieval",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
        description="Qdrant collections, upsert and filtered top-k search.",
    )
