"""Qdrant adapter: embedded local mode on a folder, or a Qdrant server by URL."""

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
    SearchHit,
    SearchRequest,
    StoredPoint,
)

from .. import sparse
from ..errors import CollectionMismatch, CollectionNotFound, VectorSizeMismatch
from .search_mode import resolve_mode

DENSE = "dense"
SPARSE = "bm25"
TEXT_FIELD = "text"
DOCUMENT_FIELD = "document_id"
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
            return existing
        await self._client.create_collection(
            spec.name,
            vectors_config={
                DENSE: models.VectorParams(size=spec.vector_size, distance=_DISTANCES[spec.distance])
            },
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
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
        return CollectionInfo(
            name=name,
            vector_size=params.size,
            distance=str(params.distance.value).lower(),
            points_count=info.points_count or 0,
            hybrid=SPARSE in (info.config.params.sparse_vectors or {}),
        )

    async def list_collections(self) -> list[CollectionInfo]:
        response = await self._client.get_collections()
        return [await self.get_collection(c.name) for c in response.collections]

    async def delete_collection(self, name: str) -> None:
        if not await self._client.collection_exists(name):
            raise CollectionNotFound(name)
        await self._client.delete_collection(name)

    async def upsert(self, collection: str, points: list[Point]) -> int:
        info = await self.get_collection(collection)
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
        await self.get_collection(collection)
        selector = payload_filter(request.filter, request.exclude)
        counted = await self._client.count(collection, count_filter=selector, exact=True)
        if counted.count:
            await self._client.delete(
                collection, points_selector=models.FilterSelector(filter=selector), wait=True
            )
        return counted.count

    async def scroll(self, collection: str, request: ScrollRequest) -> list[StoredPoint]:
        await self.get_collection(collection)
        points, _ = await self._client.scroll(
            collection, scroll_filter=payload_filter(request.filter), limit=request.limit, with_payload=True
        )
        return [StoredPoint(id=str(p.id), payload=p.payload or {}) for p in points]

    async def document_counts(self, collection: str, limit: int) -> list[DocumentCount]:
        await self.get_collection(collection)
        facets = await self._client.facet(collection, key=DOCUMENT_FIELD, limit=limit, exact=True)
        return [DocumentCount(document_id=str(hit.value), chunks=hit.count) for hit in facets.hits]

    async def search(self, collection: str, query: SearchRequest) -> list[SearchHit]:
        info = await self.get_collection(collection)
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
