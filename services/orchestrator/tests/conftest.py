from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from rag_common.app import create_service_app
from rag_orchestrator.cache import NoCache
from rag_orchestrator.pipeline import Pipeline
from rag_orchestrator.routes import router
from rag_orchestrator.settings import Settings

from .fakes import BagOfWordsEmbedder, KeywordSafety, MemoryRetriever, QuotingGenerator


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline(
        embedder=BagOfWordsEmbedder(),
        retriever=MemoryRetriever(),
        generator=QuotingGenerator(),
        safety=KeywordSafety(),
        settings=Settings(chunk_size=120, chunk_overlap=20, embed_batch_size=2),
        cache=NoCache(),
    )


def app_for(pipeline: Pipeline) -> FastAPI:
    """The orchestrator's routes over a test pipeline (no jobs, no direct embedding or llm API)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, object]]:
        yield {"pipeline": pipeline, "jobs": None, "embedding_api": None, "llm_api": None}

    return create_service_app(
        service="orchestrator", settings=pipeline.settings, lifespan=lifespan, routers=[router]
    )


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Pipeline], object]]:
    """Builds a client for the routes over any pipeline; every app is shut down after the test."""
    managers: list[LifespanManager] = []

    async def client_for(pipeline: Pipeline) -> httpx.AsyncClient:
        manager = LifespanManager(app_for(pipeline))
        managers.append(await manager.__aenter__())
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://orchestrator"
        )

    yield client_for
    for manager in managers:
        await manager.__aexit__(None, None, None)
