from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from rag_common.app import create_service_app
from rag_common.model_slots import ModelSlot, ModelVersion, version_id

from .openmp import set_wait_policy
from .ports import Embedder, Reranker, VectorCache
from .routes import admin_router, router
from .settings import ONNX_RUNTIMES, EmbeddingBackendConfig, Settings
from .swaps import EmbedderFactory, EmbedderSlot, ServedEmbedder, close_served, serve_embedder


class State(TypedDict):
    slot: EmbedderSlot
    factory: EmbedderFactory
    cache: VectorCache | None
    reranker: Reranker | None
    settings: Settings


def build_embedder(config: EmbeddingBackendConfig, settings: Settings) -> Embedder:
    """Blocking (loads the model); the served name stays the settings' across swaps."""
    layout = settings.model_layout()
    if config.backend in ONNX_RUNTIMES:
        from .adapters.onnx import OnnxEmbedder

        return OnnxEmbedder(
            model_name=settings.served_model_name(),
            onnx_path=_onnx_file(config, settings),
            threads=layout.threads,
            batch_size=settings.batch_size,
            normalize=settings.normalize,
            batch_tokens=settings.batch_tokens,
        )
    set_wait_policy(settings.omp_wait_policy)  # before the adapter imports torch
    from .adapters.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        model_name=settings.served_model_name(),
        model_path=config.model_path,
        device=settings.device,
        batch_size=settings.batch_size,
        normalize=settings.normalize,
        threads=layout.threads if settings.device == "cpu" else None,
    )


def _onnx_file(config: EmbeddingBackendConfig, settings: Settings) -> str | None:
    if config.backend == "onnx":
        return config.onnx_path
    from .adapters.onnx_export import MODEL_FILE, exported_model

    return str(exported_model(config.model_path, settings.onnx_cache_dir) / MODEL_FILE)


def load_embedder(settings: Settings) -> Embedder:
    return build_embedder(settings.backend_config(), settings)


def load_reranker(settings: Settings) -> Reranker | None:
    if not settings.rerank_model_path:
        return None
    from .adapters.cross_encoder import CrossEncoderReranker

    return CrossEncoderReranker(
        model_path=settings.rerank_model_path,
        device=settings.device,
        batch_size=settings.batch_size,
        workers=settings.model_layout().workers,
    )


def open_cache(settings: Settings, stack: AsyncExitStack) -> VectorCache | None:
    if not settings.redis_url:
        return None
    from .adapters.redis_cache import RedisVectorCache, connect

    redis = connect(settings.redis_url, settings.redis_timeout_s)
    stack.push_async_callback(redis.aclose)
    return RedisVectorCache(redis, ttl_s=settings.cache_ttl_s)


async def first_version(
    settings: Settings, embedder: Embedder | None, factory: EmbedderFactory
) -> ModelVersion[ServedEmbedder]:
    """The settings' model, versioned as a swap to its configuration would be; or the one given (tests)."""
    if embedder is None:
        config = settings.backend_config()
        embedder, fingerprint = await run_in_threadpool(factory, config, settings), config.fingerprint()
    else:
        fingerprint = {"given": type(embedder).__qualname__}
    version = version_id(embedder.model_name, fingerprint)
    return ModelVersion(model=serve_embedder(embedder, settings), version=version)


def create_app(
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    *,
    factory: EmbedderFactory = build_embedder,
) -> FastAPI:
    """`embedder` replaces the settings' model (tests); `factory` loads the settings' model and swaps."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        first = await first_version(settings, embedder, factory)
        reranker = await run_in_threadpool(load_reranker, settings)
        async with AsyncExitStack() as stack:
            slot = ModelSlot(
                service="embedding",
                name=first.model.embedder.model_name,
                first=first,
                close=close_served,
                drain_timeout_s=settings.swap_drain_timeout_s,
            )
            stack.push_async_callback(slot.aclose)
            yield {
                "slot": slot,
                "factory": factory,
                "cache": open_cache(settings, stack),
                "reranker": reranker,
                "settings": settings,
            }

    return create_service_app(
        service="embedding",
        settings=settings,
        lifespan=lifespan,
        routers=[router, admin_router],
        description="Text to vectors with sentence-transformers or onnxruntime; cross-encoder reranking.",
    )
