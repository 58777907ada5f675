"""Zero-downtime model swaps: load a new embedding model version beside the current one, then serve it.

Each version has its own dynamic batcher, so one model call never mixes texts of two versions.
The new model is loaded in a worker thread while the old one keeps answering; warm-up encodes a
full batch once; the check embeds a probe text and needs finite values of the current dimension
(unless `allow_dimension_change`: every collection embedded with the old version must then be
re-embedded, since vectors of two dimensions cannot share one). Only then does the slot switch
(`rag_common.model_slots`): requests in flight finish on the old version, whose batcher is then
stopped and model dropped.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, Field

from rag_common.errors import NotFound
from rag_common.model_slots import ModelCheckFailed, ModelSlot, ModelSlotInfo, VersionLabel, version_id

from .batching import DynamicBatcher
from .ports import Embedder
from .settings import EmbeddingBackendConfig, Settings

EmbedderFactory = Callable[[EmbeddingBackendConfig, Settings], Embedder]
PROBE = "The quick brown fox jumps over the lazy dog."


@dataclass(frozen=True, slots=True)
class ServedEmbedder:
    """One version of the embedding model and the batcher that feeds it."""

    embedder: Embedder
    batcher: DynamicBatcher


EmbedderSlot = ModelSlot[ServedEmbedder]


def serve_embedder(embedder: Embedder, settings: Settings) -> ServedEmbedder:
    batcher = DynamicBatcher(
        embedder,
        max_batch=settings.batch_max_size,
        max_wait_s=settings.batch_max_wait_ms / 1000,
        workers=settings.model_layout().workers,
    )
    batcher.start()
    return ServedEmbedder(embedder=embedder, batcher=batcher)


async def close_served(served: ServedEmbedder) -> None:
    """Stops the batcher; the model itself is freed with the last reference to it."""
    await served.batcher.aclose()


class LoadModelRequest(BaseModel):
    version: VersionLabel | None = Field(
        default=None,
        description="A label for the new version; default: `<name>@<hash of config>`.",
    )
    config: EmbeddingBackendConfig
    warm_up: bool = Field(default=True, description="Encode one full batch before the check.")
    allow_dimension_change: bool = Field(
        default=False,
        description="Serve a model whose vectors have another dimension; every collection must be re-embedded.",
    )


async def load_version(
    name: str, request: LoadModelRequest, *, slot: EmbedderSlot, settings: Settings, factory: EmbedderFactory
) -> ModelSlotInfo:
    if name != slot.name:
        raise NotFound(f"Model '{name}' is not served here; this service serves '{slot.name}'.")
    version = version_id(slot.name, request.config.fingerprint(), request.version)

    async def load() -> ServedEmbedder:
        embedder = await asyncio.to_thread(factory, request.config, settings)
        return serve_embedder(embedder, settings)

    async def check(served: ServedEmbedder) -> None:
        if request.warm_up:
            await asyncio.to_thread(served.embedder.embed, [PROBE] * settings.batch_size)
        expected = None if request.allow_dimension_change else slot.current.model.embedder.dimension
        await _check(served.embedder, expected, name=slot.name, version=version)

    await slot.swap(version, load=load, check=check)
    return slot.describe()


async def _check(embedder: Embedder, dimension: int | None, *, name: str, version: str) -> None:
    (vector,) = await asyncio.to_thread(embedder.embed, [PROBE])
    if not vector or not all(math.isfinite(x) for x in vector):
        raise ModelCheckFailed(name, version, "its vector for a probe text is empty or not finite.")
    if dimension is not None and len(vector) != dimension:
        raise ModelCheckFailed(
            name,
            version,
            f"its vectors have {len(vector)} dimensions, the current version's {dimension}. Set "
            "allow_dimension_change to swap anyway, then re-embed every collection.",
        )
