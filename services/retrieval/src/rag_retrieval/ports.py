from __future__ import annotations

from typing import Protocol

from rag_common.contracts import (
    CollectionCreate,
    CollectionInfo,
    DeleteRequest,
    DocumentCount,
    Point,
    ScrollRequest,
    ScrollResponse,
    SearchHit,
    SearchRequest,
)


class VectorStore(Protocol):
    """Collections of vectors with payloads. Unknown collections raise `CollectionNotFound`."""

    async def create_collection(self, spec: CollectionCreate) -> CollectionInfo: ...

    async def get_collection(self, name: str) -> CollectionInfo: ...

    async def list_collections(self) -> list[CollectionInfo]: ...

    async def delete_collection(self, name: str) -> None: ...

    async def replace(self, name: str, source: str) -> CollectionInfo:
        """Serve `source` under `name` atomically, then delete what `name` served before."""
        ...

    async def set_write_lock(self, name: str, owner: str | None) -> CollectionInfo:
        """While an owner holds it, upserts and deletes are refused (409); None releases it."""
        ...

    async def upsert(self, collection: str, points: list[Point], embedding_model: str | None = None) -> int:
        """Refused (409) when `embedding_model` differs from the collection's."""
        ...

    async def delete(self, collection: str, request: DeleteRequest) -> int: ...

    async def search(self, collection: str, query: SearchRequest) -> list[SearchHit]: ...

    async def scroll(self, collection: str, request: ScrollRequest) -> ScrollResponse: ...

    async def document_counts(self, collection: str, limit: int) -> list[DocumentCount]: ...

    async def close(self) -> None: ...
