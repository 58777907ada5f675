from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from rag_common.contracts import (
    CollectionCreate,
    CollectionInfo,
    CollectionList,
    CollectionName,
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

from . import service as retrieval_service
from .deps import StoreDep

router = APIRouter(prefix="/v1/collections", tags=["collections"])


@router.post("", response_model=CollectionInfo, status_code=status.HTTP_201_CREATED)
async def create_collection(body: CollectionCreate, store: StoreDep) -> CollectionInfo:
    return await retrieval_service.create_collection(body, store=store)


@router.get("", response_model=CollectionList)
async def list_collections(store: StoreDep) -> CollectionList:
    return await retrieval_service.list_collections(store=store)


@router.get("/{name}", response_model=CollectionInfo)
async def get_collection(name: CollectionName, store: StoreDep) -> CollectionInfo:
    return await retrieval_service.get_collection(name, store=store)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_collection(name: CollectionName, store: StoreDep) -> Response:
    await retrieval_service.delete_collection(name, store=store)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{name}/points", response_model=UpsertResponse)
async def upsert_points(name: CollectionName, body: UpsertRequest, store: StoreDep) -> UpsertResponse:
    return await retrieval_service.upsert(name, body, store=store)


@router.post("/{name}/search", response_model=SearchResponse)
async def search(name: CollectionName, body: SearchRequest, store: StoreDep) -> SearchResponse:
    return await retrieval_service.search(name, body, store=store)


@router.post("/{name}/points/delete", response_model=DeleteResponse)
async def delete_points(name: CollectionName, body: DeleteRequest, store: StoreDep) -> DeleteResponse:
    return await retrieval_service.delete(name, body, store=store)


@router.post("/{name}/points/scroll", response_model=ScrollResponse)
async def scroll_points(name: CollectionName, body: ScrollRequest, store: StoreDep) -> ScrollResponse:
    return await retrieval_service.scroll(name, body, store=store)


@router.get("/{name}/documents", response_model=DocumentCounts)
async def document_counts(
    name: CollectionName, store: StoreDep, limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000
) -> DocumentCounts:
    return await retrieval_service.document_counts(name, limit, store=store)


@router.post("/{name}/replace", response_model=CollectionInfo)
async def replace_collection(
    name: CollectionName, body: CollectionReplace, store: StoreDep
) -> CollectionInfo:
    return await retrieval_service.replace(name, body, store=store)


@router.put("/{name}/write-lock", response_model=CollectionInfo)
async def lock_collection(name: CollectionName, body: WriteLock, store: StoreDep) -> CollectionInfo:
    return await retrieval_service.lock(name, body, store=store)


@router.delete("/{name}/write-lock", response_model=CollectionInfo)
async def unlock_collection(name: CollectionName, store: StoreDep) -> CollectionInfo:
    return await retrieval_service.unlock(name, store=store)
