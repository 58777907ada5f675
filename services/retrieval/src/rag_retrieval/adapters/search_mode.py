"""What both Qdrant adapters check before a search or a write."""

from __future__ import annotations

from rag_common.contracts import SearchRequest

from ..errors import CollectionLocked, ModelMismatch, SparseIndexMissing, VectorSizeMismatch


def resolve_mode(collection: str, query: SearchRequest, *, vector_size: int, hybrid: bool) -> str:
    """The mode to run: a collection without a BM25 index answers dense queries for hybrid ones."""
    if query.vector is not None and len(query.vector) != vector_size:
        raise VectorSizeMismatch(collection, vector_size, len(query.vector))
    if query.mode == "dense" or hybrid:
        return query.mode
    if query.vector is None:
        raise SparseIndexMissing(collection)
    return "dense"


def check_model(collection: str, recorded: str | None, requested: str | None) -> None:
    """Vectors of two models never meet; a request or collection without a model is not checked."""
    if requested and recorded and requested != recorded:
        raise ModelMismatch(collection, recorded, requested)


def check_writable(collection: str, lock: str | None) -> None:
    if lock:
        raise CollectionLocked(collection, lock)
