"""Ingestion: chunk the documents, embed the chunks in batches, upsert them as points."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from typing import TypeVar

from rag_common.contracts import (
    DeleteRequest,
    DocumentIn,
    IngestedDocument,
    IngestRequest,
    IngestResponse,
    Point,
)

from .chunking import Chunk, chunk_text
from .pipeline import Pipeline

T = TypeVar("T")
POINT_NAMESPACE = uuid.UUID("6f1d3a52-5b0e-4f7e-9c1a-2d7f8e9b0c11")


def document_id(document: DocumentIn) -> str:
    return document.id or hashlib.sha256(document.text.encode()).hexdigest()[:32]


def revision(document: DocumentIn) -> str:
    """The content's fingerprint: chunks of any other revision of the document are stale."""
    material = document.text + "\x00" + json.dumps(document.metadata, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def point_id(collection: str, doc_id: str, chunk_index: int) -> str:
    """Deterministic, so re-ingesting a document overwrites its chunks instead of duplicating them."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{collection}/{doc_id}/{chunk_index}"))


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _points(
    collection: str, doc_id: str, document: DocumentIn, chunks: list[Chunk]
) -> list[tuple[str, dict]]:
    return [
        (
            point_id(collection, doc_id, chunk.index),
            {
                "document_id": doc_id,
                "revision": revision(document),
                "chunk_index": chunk.index,
                "text": chunk.text,
                "start": chunk.start,
                "end": chunk.end,
                "metadata": dict(document.metadata),
            },
        )
        for chunk in chunks
    ]


async def ingest(request: IngestRequest, *, pipeline: Pipeline) -> IngestResponse:
    settings = pipeline.settings
    staged: list[tuple[str, dict]] = []
    documents: list[IngestedDocument] = []
    for document in request.documents:
        doc_id = document_id(document)
        chunks = chunk_text(document.text, size=settings.chunk_size, overlap=settings.chunk_overlap)
        staged.extend(_points(request.collection, doc_id, document, chunks))
        documents.append(IngestedDocument(document_id=doc_id, chunks=len(chunks)))

    points: list[Point] = []
    for batch in batched(staged, settings.embed_batch_size):
        vectors = await pipeline.embedder.embed([payload["text"] for _, payload in batch])
        points.extend(Point(id=pid, vector=v, payload=p) for (pid, p), v in zip(batch, vectors, strict=True))

    await pipeline.retriever.ensure_collection(request.collection, len(points[0].vector))
    # Bumped before and after: no answer cached while the upsert runs outlives it.
    await pipeline.cache.bump(request.collection)
    for batch in batched(points, settings.upsert_batch_size):
        await pipeline.retriever.upsert(request.collection, list(batch))
    await _remove_stale_chunks(request, documents, pipeline)
    await pipeline.cache.bump(request.collection)
    return IngestResponse(collection=request.collection, documents=documents, chunks=len(points))


async def _remove_stale_chunks(
    request: IngestRequest, documents: list[IngestedDocument], pipeline: Pipeline
) -> None:
    """A changed document may have had more chunks: drop every chunk of an older revision."""
    current = sorted({revision(document) for document in request.documents})
    stale = DeleteRequest(
        filter={"document_id": [d.document_id for d in documents]}, exclude={"revision": current}
    )
    await pipeline.retriever.delete(request.collection, stale)
