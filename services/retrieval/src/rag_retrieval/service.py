from __future__ import annotations

from rag_common.contracts import (
    CollectionCreate,
    CollectionInfo,
    CollectionList,
    CollectionReplace,
    DeleteRequest,
    DeleteResponse,
    DocumentCounts,
    ScrollRequest,
    ScrollResponse,
    SearchRequest,
    SearchResponse,
    UpsertRequest,
    UpsertResponse,
    WriteLock,
)

from .ports import VectorStore


async def create_collection(spec: CollectionCreate, *, store: VectorStore) -> CollectionInfo:
    return await store.create_collection(spec)


async def list_collections(*, store: VectorStore) -> CollectionList:
    return CollectionList(collections=await store.list_collections())


async def get_collection(name: str, *, store: VectorStore) -> CollectionInfo:
    return await store.get_collection(name)


async def delete_collection(name: str, *, store: VectorStore) -> None:
    await store.delete_collection(name)


async def upsert(name: str, request: UpsertRequest, *, store: VectorStore) -> UpsertResponse:
    return UpsertResponse(upserted=await store.upsert(name, request.points, request.embedding_model))


async def search(name: str, request: SearchRequest, *, store: VectorStore) -> SearchResponse:
    return SearchResponse(hits=await store.search(name, request))


async def delete(name: str, request: DeleteRequest, *, store: VectorStore) -> DeleteResponse:
    return DeleteResponse(deleted=await store.delete(name, request))


async def scroll(name: str, request: ScrollRequest, *, store: VectorStore) -> ScrollResponse:
    return await store.scroll(name, request)


async def document_counts(name: str, limit: int, *, store: VectorStore) -> DocumentCounts:
    return DocumentCounts(documents=await store.document_counts(name, limit))


async def replace(name: str, request: CollectionReplace, *, store: VectorStore) -> CollectionInfo:
    return await store.replace(name, request.source)


async def lock(name: str, request: WriteLock, *, store: VectorStore) -> CollectionInfo:
    return await store.set_write_lock(name, request.owner)


async def unlock(name: str, *, store: VectorStore) -> CollectionInfo:
    return await store.set_write_lock(name, None)
