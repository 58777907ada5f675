"""Embeddings by content hash: only texts never seen before reach the embedding service."""

from __future__ import annotations

from rag_common import metrics

from ..cache import vector_key
from ..ports import Cache, Embedder


class CachedEmbedder:
    def __init__(self, inner: Embedder, cache: Cache, *, namespace: str) -> None:
        self._inner = inner
        self._cache = cache
        self._namespace = namespace

    async def embed(self, texts: list[str]) -> list[list[float]]:
        keys = [vector_key(self._namespace, text) for text in texts]
        found = await self._cache.get_vectors(keys)
        missing = [i for i, vector in enumerate(found) if vector is None]
        for vector in found:
            metrics.record_cache_lookup("embedding", hit=vector is not None)
        if missing:
            fresh = await self._inner.embed([texts[i] for i in missing])
            await self._cache.set_vectors({keys[i]: vector for i, vector in zip(missing, fresh, strict=True)})
            for i, vector in zip(missing, fresh, strict=True):
                found[i] = vector
        return [vector for vector in found if vector is not None]
