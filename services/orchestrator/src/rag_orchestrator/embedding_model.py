"""Which embedding model made a vector: learnt from the embedding service's responses.

Every upsert and search sends the model id with its vectors, and the retrieval service refuses one
that differs from the collection's (409), so vectors of two models never meet. Cached vectors are
keyed by the model id; the id is trusted for `ttl_s` only, after which the next embedding goes to
the service, so a switched backend is noticed even while every text is cached.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from rag_common.contracts import EmbeddingResponse


def vectors_made_by(response: EmbeddingResponse) -> str:
    """The model *version* behind the vectors: weights swapped in under the same name are another id."""
    version = response.model_version
    if not version or version.startswith(f"{response.model}@"):
        return version or response.model
    return f"{response.model}@{version}"


class EmbeddingModel:
    def __init__(self, ttl_s: float = 30.0) -> None:
        self._ttl_s = ttl_s
        self._id: str | None = None
        self._seen_at = 0.0

    def observe(self, model: str) -> None:
        self._id, self._seen_at = model, time.monotonic()

    @property
    def last(self) -> str | None:
        """The id of the latest vectors, whatever their age: what requests carrying them declare."""
        return self._id

    def fresh(self) -> str | None:
        """The id if reported within `ttl_s`, else None: then no cached vector can be trusted."""
        return self._id if time.monotonic() - self._seen_at < self._ttl_s else None


@runtime_checkable
class ModelEmbedder(Protocol):
    async def embed_with_model(self, texts: list[str]) -> tuple[str, list[list[float]]]:
        """Fresh vectors from the service and the id of the model that made them."""
        ...
