"""Qdrant adapter: embedded local mode on a folder, or a Qdrant server by URL."""

from __future__ import annotations

from typing import Any

from qdrant_client import AsyncQdrantClient, models

from rag_common.contracts import (
    CollectionCreate,
    CollectionInfo,
    FilterValue,
    Point,
    SearchHit,
    SearchRequest,
)

from .. import sparse
from ..errors import CollectionMismatch, CollectionNotFound, SparseIndexMissing, VectorSizeMismatch

DENSE = "dense"
SPARSE = "bm25"
TEXT_FIELD = "text"
_DISTANCES = {"cosine": models.Distance.COSINE, "dot": models.Distance.DOT, "euclid": models.Distance.EUCLID}


def payload_filter(conditions: dict[str, FilterValue] | None) -> models.Filter | None:
    if not conditions:
        return None
    return models.Filter(
        must=[
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in conditions.items()
            if not isinstance(value, float)
        ]
        + [
            models.FieldCondition(key=key, range=models.Range(gte=value, lte=value))
            for key, value in conditions.items()
            if isinstance(value, float)
        ]
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

    async def delete(self, collection: str, conditions: dict[str, FilterValue]) -> int:
        await self.get_collection(collection)
        selector = payload_filter(conditions)
        counted = await self._client.count(collection, count_filter=selector, exact=True)
        if counted.count:
            await self._client.delete(
                collection, points_selector=models.FilterSelector(filter=selector), wait=True
            )
        return counted.count

    async def search(self, collection: str, query: SearchRequest) -> list[SearchHit]:
        info = await self.get_collection(collection)
        if query.vector is not None and len(query.vector) != info.vector_size:
            raise VectorSizeMismatch(collection, info.vector_size, len(query.vector))
        mode = query.mode
        if mode != "dense" and not info.hybrid:
            if query.vector is None:
                raise SparseIndexMissing(collection)
            mode = "dense"
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
