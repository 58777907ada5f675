from __future__ import annotations

from typing import Protocol

from rag_common.contracts import (
    CollectionCreate,
    CollectionInfo,
    FilterValue,
    Point,
    SearchHit,
    SearchRequest,
)


class VectorStore(Protocol):
    """Collections of vectors with payloads. Unknown collections raise `CollectionNotFound`."""

    async def create_collection(self, spec: CollectionCreate) -> CollectionInfo: ...

    async def get_collection(self, name: str) -> CollectionInfo: ...

    async def list_collections(self) -> list[CollectionInfo]: ...

    async def delete_collection(self, name: str) -> None: ...

    async def upsert(self, collection: str, points: list[Point]) -> int: ...

    async def delete(self, collection: str, conditions: dict[str, FilterValue]) -> int: ...

    async def search(self, collection: str, query: SearchRequest) -> list[SearchHit]: ...

    async def close(self) -> None: ...
