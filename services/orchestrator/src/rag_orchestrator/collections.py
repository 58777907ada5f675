"""A tenant's collections: create (sized by the embedding model), list, delete."""

from __future__ import annotations

from rag_common.contracts import CollectionInfo, CollectionList

from . import tenancy
from .pipeline import Pipeline

PROBE_TEXT = "collection dimension probe"


async def create(tenant: str, name: str, *, pipeline: Pipeline) -> CollectionInfo:
    """Sized from one probe embedding, so the collection always fits the embedding model in service."""
    vector = (await pipeline.embedder.embed([PROBE_TEXT]))[0]
    info = await pipeline.retriever.ensure_collection(tenancy.physical(tenant, name), len(vector))
    return info.model_copy(update={"name": name})


async def list_for(tenant: str, *, pipeline: Pipeline) -> CollectionList:
    return CollectionList(
        collections=[
            info.model_copy(update={"name": tenancy.logical(tenant, info.name)})
            for info in await pipeline.retriever.list_collections()
            if tenancy.owns(tenant, info.name)
        ]
    )


async def delete(tenant: str, name: str, *, pipeline: Pipeline) -> None:
    """Bumped before and after, like every change: no cached answer outlives the collection."""
    physical = tenancy.physical(tenant, name)
    await pipeline.cache.bump(physical)
    await pipeline.retriever.delete_collection(physical)
    await pipeline.cache.bump(physical)
