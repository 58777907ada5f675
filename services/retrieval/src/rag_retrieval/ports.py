from __future__ import annotations

from typing import Protocol

from rag_common.contracts import (
    CollectionCreate,
    CollectionInfo,
    DeleteRequest,
    DocumentCount,
    Point,
    ScrollRequest,
    SearchHit,
    SearchRequest,
    StoredPoint,
)


class VectorStore(Protocol):
    """Collections of vectors with payloads. Unknown collections raise `CollectionNotFound`."""

    async def create_collection(self, spec: CollectionCreate) -> CollectionInfo: ...

    async def get_collection(self, name: str) -> CollectionInfo: ...

    async def list_collections(self) -> list[CollectionInfo]: ...

    async def delete_collection(self, name: str) -> None: ...

    async def upsert(self, collection: str, points: list[Point]) -> int: ...

    async def delete(self, collection: str, request: DeleteRequest) -> int: ...

    async def search(self, collection: str, query: SearchRequest) -> list[SearchHit]: ...

    async def scroll(self, collection: str, request: ScrollRequest) -> list[StoredPoint]: ...

    async def document_counts(self, collection: str, limit: int) -> list[DocumentCount]: ...

    async def close(self) -> None: ...
