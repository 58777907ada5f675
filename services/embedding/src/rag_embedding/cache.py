"""Embeddings by content hash: only texts the model has not embedded lately reach the batcher.

A key names the served model, its version and the normalise flag besides the text's sha256, so two
models, or two versions of one (a swap from torch to ONNX changes the vectors slightly), never read
each other's vectors from a shared Redis.
"""

from __future__ import annotations

import asyncio
import hashlib

from rag_common.metrics import record_cache_lookup

from .batching import DynamicBatcher, Embedded
from .ports import CachedVector, VectorCache

PREFIX = "rag:embedding:"
CACHE_NAME = "embedding_vectors"


def cache_key(model: str, version: str, *, normalize: bool, text: str) -> str:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{PREFIX}{model}:{version}:{'norm' if normalize else 'raw'}:{digest}"


async def embed_cached(
    texts: list[str],
    *,
    batcher: DynamicBatcher,
    cache: VectorCache,
    model: str,
    version: str,
    normalize: bool,
) -> Embedded:
    """One MGET for the whole request; the misses go through the batcher together and are
    written back in one pipeline."""
    keys = [cache_key(model, version, normalize=normalize, text=text) for text in texts]
    found = await cache.get_many(keys)
    for item in found:
        record_cache_lookup(CACHE_NAME, hit=item is not None)
    missing = [i for i, item in enumerate(found) if item is None]
    if missing:
        fresh = await _embed_each(batcher, [texts[i] for i in missing])
        await cache.put_many({keys[i]: item for i, item in zip(missing, fresh, strict=True)})
        for i, item in zip(missing, fresh, strict=True):
            found[i] = item
    items = [item for item in found if item is not None]
    return Embedded(vectors=[item.vector for item in items], tokens=sum(item.tokens for item in items))


async def _embed_each(batcher: DynamicBatcher, texts: list[str]) -> list[CachedVector]:
    """One batcher entry per text, for per-text token counts (a later hit reports the same usage as
    this miss); the batcher still merges them into shared model calls of up to its maximum size."""
    embedded = await asyncio.gather(*(batcher.embed([text]) for text in texts))
    return [CachedVector(vector=item.vectors[0], tokens=item.tokens) for item in embedded]
