"""What both Qdrant adapters check before a search."""

from __future__ import annotations

from rag_common.contracts import SearchRequest

from ..errors import SparseIndexMissing, VectorSizeMismatch


def resolve_mode(collection: str, query: SearchRequest, *, vector_size: int, hybrid: bool) -> str:
    """The mode to run: a collection without a BM25 index answers dense queries for hybrid ones."""
    if query.vector is not None and len(query.vector) != vector_size:
        raise VectorSizeMismatch(collection, vector_size, len(query.vector))
    if query.mode == "dense" or hybrid:
        return query.mode
    if query.vector is None:
        raise SparseIndexMissing(collection)
    return "dense"
