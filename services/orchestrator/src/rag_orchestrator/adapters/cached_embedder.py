"""Embeddings by content hash and embedding model: only texts never seen before reach the embedding
service, and a vector of one model is never served once the service reports another."""

from __future__ import annotations

from rag_common import metrics

from ..cache import vector_key
from ..embedding_model import EmbeddingModel, ModelEmbedder
from ..ports import Cache, Embedder


class CachedEmbedder:
    """`namespace`: the embedding service's model as learnt from its responses, or a fixed name."""

    def __init__(self, inner: Embedder, cache: Cache, *, namespace: str | EmbeddingModel) -> None:
        self._inner = inner
        self._cache = cache
        self._namespace = namespace

    async def embed(self, texts: list[str]) -> list[list[float]]:
        namespace = self._namespace if isinstance(self._namespace, str) else self._namespace.fresh()
        if namespace is None:  # the model in service is not known (any more): ask the service
            return await self._embed_and_store(texts)
        keys = [vector_key(namespace, text) for text in texts]
        found = await self._cache.get_vectors(keys)
        missing = [i for i, vector in enumerate(found) if vector is None]
        for vector in found:
            metrics.record_cache_lookup("embedding", hit=vector is not None)
        if missing:
            fresh = await self._embed_and_store([texts[i] for i in missing])
            for i, vector in zip(missing, fresh, strict=True):
                found[i] = vector
        return [vector for vector in found if vector is not None]

    async def _embed_and_store(self, texts: list[str]) -> list[list[float]]:
        """Stored under the model that made them, which may differ from the one looked up."""
        model, vectors = await self._fresh(texts)
        await self._cache.set_vectors(
            {vector_key(model, text): vector for text, vector in zip(texts, vectors, strict=True)}
        )
        return vectors

    async def _fresh(self, texts: list[str]) -> tuple[str, list[list[float]]]:
        if isinstance(self._inner, ModelEmbedder):
            return await self._inner.embed_with_model(texts)
        fixed = self._namespace if isinstance(self._namespace, str) else self._namespace.last
        return fixed or "unknown", await self._inner.embed(texts)
