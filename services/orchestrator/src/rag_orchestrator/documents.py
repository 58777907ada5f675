"""Documents of a collection: list, read back, delete (and with it every cached answer citing them)."""

from __future__ import annotations

from rag_common.contracts import (
    DeleteRequest,
    DocumentChunk,
    DocumentCounts,
    DocumentDeleted,
    DocumentDetail,
    ScrollRequest,
)
from rag_common.errors import NotFound

from .pipeline import Pipeline

MAX_CHUNKS = 10_000


class DocumentNotFound(NotFound):
    type_slug = "document-not-found"

    def __init__(self, collection: str, document_id: str) -> None:
        super().__init__(
            f"Document '{document_id}' is not in collection '{collection}'.",
            extra={"collection": collection, "document_id": document_id},
        )


async def list_documents(collection: str, *, pipeline: Pipeline) -> DocumentCounts:
    return DocumentCounts(documents=await pipeline.retriever.document_counts(collection))


async def get_document(collection: str, document_id: str, *, pipeline: Pipeline) -> DocumentDetail:
    request = ScrollRequest(filter={"document_id": document_id}, limit=MAX_CHUNKS)
    points = await pipeline.retriever.scroll(collection, request)
    if not points:
        raise DocumentNotFound(collection, document_id)
    payloads = sorted((p.payload for p in points), key=lambda payload: int(payload.get("chunk_index", 0)))
    return DocumentDetail(
        document_id=document_id,
        collection=collection,
        metadata=dict(payloads[0].get("metadata") or {}),
        chunks=[DocumentChunk.model_validate(payload) for payload in payloads],
    )


async def delete_document(collection: str, document_id: str, *, pipeline: Pipeline) -> DocumentDeleted:
    """Bumped before and after, like ingestion: no cached answer can cite the document afterwards."""
    await pipeline.cache.bump(collection)
    deleted = await pipeline.retriever.delete(collection, DeleteRequest(filter={"document_id": document_id}))
    await pipeline.cache.bump(collection)
    if deleted == 0:
        raise DocumentNotFound(collection, document_id)
    return DocumentDeleted(document_id=document_id, collection=collection, chunks_deleted=deleted)
