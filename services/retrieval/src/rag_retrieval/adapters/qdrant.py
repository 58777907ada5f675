"""Qdrant adapter: embedded local mode on a folder, or a Qdrant server by URL."""

from __future__ import annotations

from qdrant_client import AsyncQdrantClient, models

from rag_common.contracts import (
    CollectionCreate,
    CollectionInfo,
    FilterValue,
    Point,
    SearchHit,
    SearchRequest,
)

from ..errors import CollectionMismatch, CollectionNotFound, VectorSizeMismatch

DENSE = "dense"
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


class QdrantVectorStore:
    def __init__(self, client: AsyncQdrantClient) -> None:
        self._client = client

    @classmethod
    def connect(
        cls, *, url: str | None, path: str, api_key: str | None = None, timeout_s: int = 10
    ) -> QdrantVectorStore:
        if url:
            return cls(AsyncQdrantClient(url=url, api_key=api_key, timeout=timeout_s))
        return cls(AsyncQdrantClient(path=path))

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
        await self._client.upsert(
            collection,
            points=[models.PointStruct(id=p.id, vector={DENSE: p.vector}, payload=p.payload) for p in points],
            wait=True,
        )
        return len(points)

    async def search(self, collection: str, query: SearchRequest) -> list[SearchHit]:
        info = await self.get_collection(collection)
        if len(query.vector) != info.vector_size:
            raise VectorSizeMismatch(collection, info.vector_size, len(query.vector))
        response = await self._client.query_points(
            collection,
            query=query.vector,
            using=DENSE,
            limit=query.top_k,
            query_filter=payload_filter(query.filter),
            score_threshold=query.score_threshold,
            with_payload=True,
        )
        return [SearchHit(id=str(p.id), score=p.score, payload=p.payload or {}) for p in response.points]
