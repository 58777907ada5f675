"""Qdrant adapter: embedded local mode on a folder, or a Qdrant server by URL.

A collection's embedding model and write lock live in Qdrant's own collection metadata, and a
replaced collection is served through a Qdrant alias: both are stored with the collection itself,
so every retrieval replica in front of one Qdrant server sees the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qdrant_client import AsyncQdrantClient, models

from rag_common.contracts import (
    CollectionCreate,
    CollectionInfo,
    DeleteRequest,
    DocumentCount,
    FilterValue,
    Point,
    ScrollRequest,
    ScrollResponse,
    SearchHit,
    SearchRequest,
    StoredPoint,
)

from .. import sparse
from ..errors import CollectionMismatch, CollectionNotFound, ReplaceRefused, VectorSizeMismatch
from .search_mode import check_model, check_writable, resolve_mode

DENSE = "dense"
SPARSE = "bm25"
TEXT_FIELD = "text"
DOCUMENT_FIELD = "document_id"
MODEL_KEY = "embedding_model"
LOCK_KEY = "write_lock"
_DISTANCES = {"cosine": models.Distance.COSINE, "dot": models.Distance.DOT, "euclid": models.Distance.EUCLID}


def _condition(key: str, value: FilterValue | list[FilterValue]) -> models.FieldCondition:
    if isinstance(value, list):
        return models.FieldCondition(key=key, match=models.MatchAny(any=value))  # type: ignore[arg-type]
    if isinstance(value, float):
        return models.FieldCondition(key=key, range=models.Range(gte=value, lte=value))
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def payload_filter(
    conditions: Mapping[str, FilterValue | list[FilterValue]] | None,
    exclude: Mapping[str, FilterValue | list[FilterValue]] | None = None,
) -> models.Filter | None:
    """Every `conditions` field must match (a list: any of its values); no `exclude` field may."""
    if not conditions and not exclude:
        return None
    return models.Filter(
        must=[_condition(k, v) for k, v in (conditions or {}).items()] or None,
        must_not=[_condition(k, v) for k, v in (exclude or {}).items()] or None,
    )


_FUSIONS = {"dbsf": models.Fusion.DBSF, "rrf": models.Fusion.RRF}


class QdrantVectorStore:
    def __init__(
        self,
        client: AsyncQdrantClient,
        *,
        fusion: str = "dbsf",
        bm25_average_terms: float = 100.0,
        hybrid_candidates: int = 100,
    ) -> None:
        self._client = client
        self._hybrid_candidates = hybrid_candidates
        self._fusion = _FUSIONS[fusion]
        self._bm25_average_terms = bm25_average_terms

    @classmethod
    def connect(
        cls,
        *,
        url: str | None,
        path: str,
        api_key: str | None = None,
        timeout_s: int = 10,
        fusion: str = "dbsf",
        bm25_average_terms: float = 100.0,
        hybrid_candidates: int = 100,
    ) -> QdrantVectorStore:
        client = (
            AsyncQdrantClient(url=url, api_key=api_key, timeout=timeout_s)
            if url
            else AsyncQdrantClient(path=path)
        )
        return cls(
            client, fusion=fusion, bm25_average_terms=bm25_average_terms, hybrid_candidates=hybrid_candidates
        )

    async def close(self) -> None:
        await self._client.close()

    async def create_collection(self, spec: CollectionCreate) -> CollectionInfo:
        if await self._client.collection_exists(spec.name):
            existing = await self.get_collection(spec.name)
            if existing.vector_size != spec.vector_size:
                raise CollectionMismatch(spec.name, existing.vector_size, spec.vector_size)
            check_model(spec.name, existing.embedding_model, spec.embedding_model)
            return existing
        await self._client.create_collection(
            spec.name,
            vectors_config={
                DENSE: models.VectorParams(size=spec.vector_size, distance=_DISTANCES[spec.distance])
            },
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata={MODEL_KEY: spec.embedding_model} if spec.embedding_model else None,
        )
        # A Qdrant server needs the index for filtered deletes and facets by document; local mode ignores it.
        await self._client.create_payload_index(spec.name, DOCUMENT_FIELD, models.PayloadSchemaType.KEYWORD)
        return await self.get_collection(spec.name)

    async def get_collection(self, name: str) -> CollectionInfo:
        if not await self._client.collection_exists(name):
            raise CollectionNotFound(name)
        info = await self._client.get_collection(name)
        vectors = info.config.params.vectors
        params = vectors[DENSE] if isinstance(vectors, dict) else vectors
        assert params is not None
        metadata = info.config.metadata or {}
        return CollectionInfo(
            name=name,
            vector_size=params.size,
            distance=str(params.distance.value).lower(),
            points_count=info.points_count or 0,
            hybrid=SPARSE in (info.config.params.sparse_vectors or {}),
            embedding_model=metadata.get(MODEL_KEY),
            write_lock=metadata.get(LOCK_KEY),
        )

    async def _aliases(self) -> dict[str, str]:
        response = await self._client.get_aliases()
        return {alias.alias_name: alias.collection_name for alias in response.aliases}

    async def list_collections(self) -> list[CollectionInfo]:
        """Collections by the names they are served under: a replaced one by its alias."""
        response = await self._client.get_collections()
        aliases = await self._aliases()
        targets = set(aliases.values())
        names = {c.name for c in response.collections if c.name not in targets} | aliases.keys()
        return [await self.get_collection(name) for name in sorted(names)]

    async def delete_collection(self, name: str) -> None:
        aliases = await self._aliases()
        if name in aliases:
            delete_alias = models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=name))
            await self._client.update_collection_aliases(change_aliases_operations=[delete_alias])
            name = aliases[name]
        if not await self._client.collection_exists(name):
            raise CollectionNotFound(name)
        await self._client.delete_collection(name)

    async def replace(self, name: str, source: str) -> CollectionInfo:
        """Points alias `name` at `source`, then deletes what `name` served before.

        A name that is still a plain collection is deleted just before its alias is created (Qdrant
        refuses an alias named like a collection): in local mode neither call yields to the event
        loop, so no request sees the gap; against a server one may get a 404 in between.
        """
        aliases = await self._aliases()
        if source == name or source in aliases:
            raise ReplaceRefused(name, source)
        if not await self._client.collection_exists(source):
            raise CollectionNotFound(source)
        previous = aliases.get(name)
        operations: list[models.AliasOperations] = []
        if previous is not None:
            operations.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=name)))
        elif await self._client.collection_exists(name):
            previous = name
            await self._client.delete_collection(name)
        create = models.CreateAlias(collection_name=source, alias_name=name)
        operations.append(models.CreateAliasOperation(create_alias=create))
        await self._client.update_collection_aliases(change_aliases_operations=operations)
        if previous not in (None, name, source):
            await self._client.delete_collection(previous)
        return await self.get_collection(name)

    async def set_write_lock(self, name: str, owner: str | None) -> CollectionInfo:
        target = (await self._aliases()).get(name, name)
        await self.get_collection(target)
        await self._client.update_collection(target, metadata={LOCK_KEY: owner})
        return await self.get_collection(name)

    async def upsert(self, collection: str, points: list[Point], embedding_model: str | None = None) -> int:
        info = await self.get_collection(collection)
        check_writable(collection, info.write_lock)
        check_model(collection, info.embedding_model, embedding_model)
        for point in points:
            if len(point.vector) != info.vector_size:
                raise VectorSizeMismatch(collection, info.vector_size, len(point.vector))
        structs = [
            models.PointStruct(id=p.id, vector=self._vectors(p, info.hybrid), payload=p.payload)
            for p in points
        ]
        await self._client.upsert(collection, points=structs, wait=True)
        return len(points)

    def _vectors(self, point: Point, hybrid: bool) -> dict[str, list[float] | models.SparseVector]:
        vectors: dict[str, list[float] | models.SparseVector] = {DENSE: point.vector}
        text = point.payload.get(TEXT_FIELD)
        if hybrid and isinstance(text, str):
            indices, values = sparse.document_vector(text, self._bm25_average_terms)
            vectors[SPARSE] = models.SparseVector(indices=indices, values=values)
        return vectors

    async def delete(self, collection: str, request: DeleteRequest) -> int:
        check_writable(collection, (await self.get_collection(collection)).write_lock)
        selector = payload_filter(request.filter, request.exclude)
        counted = await self._client.count(collection, count_filter=selector, exact=True)
        if counted.count:
            await self._client.delete(
                collection, points_selector=models.FilterSelector(filter=selector), wait=True
            )
        return counted.count

    async def scroll(self, collection: str, request: ScrollRequest) -> ScrollResponse:
        await self.get_collection(collection)
        points, next_offset = await self._client.scroll(
            collection,
            scroll_filter=payload_filter(request.filter),
            limit=request.limit,
            offset=request.offset,
            with_payload=True,
        )
        return ScrollResponse(
            points=[StoredPoint(id=str(p.id), payload=p.payload or {}) for p in points],
            next_offset=None if next_offset is None else str(next_offset),
        )

    async def document_counts(self, collection: str, limit: int) -> list[DocumentCount]:
        await self.get_collection(collection)
        facets = await self._client.facet(collection, key=DOCUMENT_FIELD, limit=limit, exact=True)
        return [DocumentCount(document_id=str(hit.value), chunks=hit.count) for hit in facets.hits]

    async def search(self, collection: str, query: SearchRequest) -> list[SearchHit]:
        info = await self.get_collection(collection)
        check_model(collection, info.embedding_model, query.embedding_model)
        mode = resolve_mode(collection, query, vector_size=info.vector_size, hybrid=info.hybrid)
        response = await self._client.query_points(
            collection, **self._query(query, mode), limit=query.top_k, with_payload=True
        )
        return [SearchHit(id=str(p.id), score=p.score, payload=p.payload or {}) for p in response.points]

    def _query(self, query: SearchRequest, mode: str) -> dict[str, Any]:
        conditions = payload_filter(query.filter)
        if mode == "dense":
            return {
                "query": query.vector,
                "using": DENSE,
                "query_filter": conditions,
                "score_threshold": query.score_threshold,
            }
        indices, values = sparse.query_vector(query.text or "")
        bm25 = models.SparseVector(indices=indices, values=values)
        if mode == "sparse":
            return {"query": bm25, "using": SPARSE, "query_filter": conditions}
        candidates = max(query.top_k, self._hybrid_candidates)
        return {
            "prefetch": [
                models.Prefetch(
                    query=query.vector,
                    using=DENSE,
                    filter=conditions,
                    score_threshold=query.score_threshold,
                    limit=candidates,
                ),
                models.Prefetch(query=bm25, using=SPARSE, filter=conditions, limit=candidates),
            ],
            "query": models.FusionQuery(fusion=self._fusion),
        }
