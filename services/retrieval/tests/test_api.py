from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from rag_retrieval.main import create_app
from rag_retrieval.settings import Settings


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://retrieval") as http:
            yield http


@pytest.fixture(params=["edge", "local"])
async def client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Every behaviour is checked on both embedded engines."""
    async with serve(Settings(engine=request.param, qdrant_path=str(tmp_path / "qdrant"))) as http:
        yield http


def point(vector: list[float], **payload: object) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "vector": vector, "payload": payload}


async def create(client: httpx.AsyncClient, name: str = "docs", size: int = 3) -> None:
    response = await client.post("/v1/collections", json={"name": name, "vector_size": size})
    assert response.status_code == 201, response.text


async def test_collection_lifecycle(client: httpx.AsyncClient) -> None:
    await create(client)
    info = (await client.get("/v1/collections/docs")).json()
    assert info == {
        "name": "docs",
        "vector_size": 3,
        "distance": "cosine",
        "points_count": 0,
        "hybrid": True,
        "embedding_model": None,
        "write_lock": None,
    }
    assert [c["name"] for c in (await client.get("/v1/collections")).json()["collections"]] == ["docs"]
    assert (await client.delete("/v1/collections/docs")).status_code == 204
    assert (await client.get("/v1/collections/docs")).status_code == 404


async def test_creating_an_existing_collection_is_idempotent_but_size_must_match(
    client: httpx.AsyncClient,
) -> None:
    await create(client)
    await create(client)
    clash = await client.post("/v1/collections", json={"name": "docs", "vector_size": 4})
    assert clash.status_code == 409
    assert "size 3" in clash.json()["detail"]


async def test_search_ranks_by_similarity_and_filters_on_payload(client: httpx.AsyncClient) -> None:
    await create(client)
    points = [
        point([1.0, 0.0, 0.0], document_id="a", metadata={"topic": "x"}),
        point([0.9, 0.1, 0.0], document_id="b", metadata={"topic": "y"}),
        point([0.0, 1.0, 0.0], document_id="c", metadata={"topic": "x"}),
    ]
    upserted = await client.put("/v1/collections/docs/points", json={"points": points})
    assert upserted.json() == {"upserted": 3}
    hits = (await client.post("/v1/collections/docs/search", json={"vector": [1, 0, 0], "top_k": 2})).json()[
        "hits"
    ]
    assert [h["payload"]["document_id"] for h in hits] == ["a", "b"]
    assert hits[0]["score"] > hits[1]["score"]
    filtered = await client.post(
        "/v1/collections/docs/search",
        json={"vector": [1, 0, 0], "top_k": 5, "filter": {"metadata.topic": "x"}},
    )
    assert [h["payload"]["document_id"] for h in filtered.json()["hits"]] == ["a", "c"]
    above = await client.post(
        "/v1/collections/docs/search", json={"vector": [1, 0, 0], "top_k": 5, "score_threshold": 0.5}
    )
    assert {h["payload"]["document_id"] for h in above.json()["hits"]} == {"a", "b"}


async def test_upserting_the_same_id_replaces_the_point(client: httpx.AsyncClient) -> None:
    await create(client)
    first = point([1.0, 0.0, 0.0], text="old")
    await client.put("/v1/collections/docs/points", json={"points": [first]})
    await client.put("/v1/collections/docs/points", json={"points": [first | {"payload": {"text": "new"}}]})
    assert (await client.get("/v1/collections/docs")).json()["points_count"] == 1
    hits = (await client.post("/v1/collections/docs/search", json={"vector": [1, 0, 0]})).json()["hits"]
    assert hits[0]["payload"]["text"] == "new"


async def test_unknown_collection_is_404_problem_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/collections/nope/search", json={"vector": [1, 0, 0]})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["collection"] == "nope"


async def test_wrong_vector_size_is_422(client: httpx.AsyncClient) -> None:
    await create(client)
    response = await client.put("/v1/collections/docs/points", json={"points": [point([1.0, 2.0])]})
    assert response.status_code == 422
    assert "size 3" in response.json()["detail"]


async def test_invalid_collection_name_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/collections", json={"name": "../etc", "vector_size": 3})
    assert response.status_code == 422


async def seed_texts(client: httpx.AsyncClient) -> None:
    await create(client)
    points = [
        point([1.0, 0.0, 0.0], document_id="dense-only", text="general overview of many topics"),
        point([0.0, 1.0, 0.0], document_id="keyword", text="The Dewey Decimal Classification of libraries"),
        point([0.0, 0.0, 1.0], document_id="other", text="cooking pasta with tomatoes", topic="food"),
    ]
    await client.put("/v1/collections/docs/points", json={"points": points})


async def search_ids(client: httpx.AsyncClient, **query: object) -> list[str]:
    response = await client.post("/v1/collections/docs/search", json=query)
    assert response.status_code == 200, response.text
    return [h["payload"]["document_id"] for h in response.json()["hits"]]


async def test_sparse_bm25_finds_the_keyword_match(client: httpx.AsyncClient) -> None:
    await seed_texts(client)
    assert (await search_ids(client, text="dewey classification", mode="sparse", top_k=3)) == ["keyword"]


async def test_hybrid_fuses_dense_and_keyword_rankings(client: httpx.AsyncClient) -> None:
    await seed_texts(client)
    ids = await search_ids(client, vector=[1, 0, 0], text="dewey decimal", mode="hybrid", top_k=3)
    assert set(ids[:2]) == {"dense-only", "keyword"}, "each ranking's winner makes the fused top two"
    dense = await search_ids(client, vector=[1, 0, 0], mode="dense", top_k=1)
    assert dense == ["dense-only"]


async def test_hybrid_respects_the_payload_filter(client: httpx.AsyncClient) -> None:
    await seed_texts(client)
    ids = await search_ids(client, vector=[1, 0, 0], text="dewey", mode="hybrid", filter={"topic": "food"})
    assert ids == ["other"]


@pytest.mark.parametrize(
    "query", [{"mode": "hybrid", "vector": [1, 0, 0]}, {"mode": "sparse"}, {"mode": "dense", "text": "x"}]
)
async def test_search_without_the_inputs_its_mode_needs_is_422(
    client: httpx.AsyncClient, query: dict[str, object]
) -> None:
    await create(client)
    response = await client.post("/v1/collections/docs/search", json=query)
    assert response.status_code == 422
    assert "needs" in response.json()["detail"]


async def test_delete_by_filter_removes_exactly_the_matching_points(client: httpx.AsyncClient) -> None:
    await seed_texts(client)
    response = await client.post(
        "/v1/collections/docs/points/delete", json={"filter": {"document_id": "keyword"}}
    )
    assert response.json() == {"deleted": 1}
    assert (await client.get("/v1/collections/docs")).json()["points_count"] == 2
    assert "keyword" not in await search_ids(client, text="dewey classification", mode="sparse")
    again = await client.post(
        "/v1/collections/docs/points/delete", json={"filter": {"document_id": "keyword"}}
    )
    assert again.json() == {"deleted": 0}


async def test_documents_are_counted_by_chunks_and_scrolled_by_filter(client: httpx.AsyncClient) -> None:
    await create(client)
    points = [point([1.0, 0.0, 0.0], document_id="a", chunk_index=i, text=f"a{i}") for i in range(3)]
    points.append(point([0.0, 1.0, 0.0], document_id="b", chunk_index=0, text="b0"))
    await client.put("/v1/collections/docs/points", json={"points": points})
    counts = (await client.get("/v1/collections/docs/documents")).json()["documents"]
    assert sorted((d["document_id"], d["chunks"]) for d in counts) == [("a", 3), ("b", 1)]
    scrolled = await client.post("/v1/collections/docs/points/scroll", json={"filter": {"document_id": "a"}})
    assert sorted(p["payload"]["text"] for p in scrolled.json()["points"]) == ["a0", "a1", "a2"]
    assert (await client.get("/v1/collections/nope/documents")).status_code == 404


async def test_delete_with_any_of_and_exclude_keeps_the_current_revision(client: httpx.AsyncClient) -> None:
    await create(client)
    points = [
        point([1.0, 0.0, 0.0], document_id="a", revision="old", text="a old"),
        point([1.0, 0.0, 0.0], document_id="a", revision="new", text="a new"),
        point([0.0, 1.0, 0.0], document_id="b", revision="old-b", text="b old"),
        point([0.0, 0.0, 1.0], document_id="c", revision="old-c", text="c untouched"),
    ]
    await client.put("/v1/collections/docs/points", json={"points": points})
    response = await client.post(
        "/v1/collections/docs/points/delete",
        json={"filter": {"document_id": ["a", "b"]}, "exclude": {"revision": ["new", "new-b"]}},
    )
    assert response.json() == {"deleted": 2}
    left = (await client.post("/v1/collections/docs/points/scroll", json={})).json()["points"]
    assert sorted(p["payload"]["text"] for p in left) == ["a new", "c untouched"]


async def test_filters_match_booleans_numbers_and_strings(client: httpx.AsyncClient) -> None:
    await create(client)
    points = [
        point([1.0, 0.0, 0.0], document_id="a", public=True, year=2020, weight=0.5),
        point([0.9, 0.1, 0.0], document_id="b", public=False, year=2021, weight=1.5),
    ]
    await client.put("/v1/collections/docs/points", json={"points": points})
    for filter_, expected in (
        ({"public": True}, ["a"]),
        ({"public": False}, ["b"]),
        ({"year": 2021}, ["b"]),
        ({"weight": 0.5}, ["a"]),
        ({"document_id": "b", "public": False}, ["b"]),
    ):
        assert await search_ids(client, vector=[1, 0, 0], filter=filter_) == expected, filter_
    deleted = await client.post(
        "/v1/collections/docs/points/delete",
        json={"filter": {"year": [2020, 2021]}, "exclude": {"public": True}},
    )
    assert deleted.json() == {"deleted": 1}


async def test_a_query_of_stop_words_only_finds_nothing_by_keyword(client: httpx.AsyncClient) -> None:
    await seed_texts(client)
    assert await search_ids(client, text="the of and", mode="sparse") == []
    assert await search_ids(client, vector=[1, 0, 0], text="the of", mode="hybrid", top_k=1) == ["dense-only"]


async def test_concurrent_upserts_and_searches_all_land(client: httpx.AsyncClient) -> None:
    await create(client)

    async def put(batch: int) -> None:
        points = [point([1.0, float(i), 0.0], document_id=f"d{batch}", text=f"chunk {i}") for i in range(20)]
        response = await client.put("/v1/collections/docs/points", json={"points": points})
        assert response.status_code == 200, response.text

    searches = [search_ids(client, vector=[1, 0, 0], text="chunk", mode="hybrid") for _ in range(10)]
    await asyncio.gather(*(put(b) for b in range(10)), *searches)
    assert (await client.get("/v1/collections/docs")).json()["points_count"] == 200
    counts = (await client.get("/v1/collections/docs/documents")).json()["documents"]
    assert sorted(d["chunks"] for d in counts) == [20] * 10


@pytest.mark.parametrize("engine", ["edge", "local"])
async def test_collections_survive_a_restart(engine: str, tmp_path: Path) -> None:
    settings = Settings(engine=engine, qdrant_path=str(tmp_path / "qdrant"))
    async with serve(settings) as first:
        await seed_texts(first)
    async with serve(settings) as second:
        info = (await second.get("/v1/collections/docs")).json()
        assert (info["vector_size"], info["distance"], info["points_count"]) == (3, "cosine", 3)
        assert await search_ids(second, text="dewey", mode="sparse") == ["keyword"]
        await create(second)
        assert (await second.delete("/v1/collections/docs")).status_code == 204
    async with serve(settings) as third:
        assert (await third.get("/v1/collections")).json() == {"collections": []}


async def test_a_filter_still_matches_after_its_field_is_indexed_by_another_type(
    client: httpx.AsyncClient,
) -> None:
    await create(client)
    points = [
        point([1.0, 0.0, 0.0], document_id="int", year=2020),
        point([1.0, 0.0, 0.0], document_id="str", year="2020"),
    ]
    await client.put("/v1/collections/docs/points", json={"points": points})
    assert await search_ids(client, vector=[1, 0, 0], filter={"year": 2020}) == ["int"]
    assert await search_ids(client, vector=[1, 0, 0], filter={"year": "2020"}) == ["str"]
    scrolled = await client.post("/v1/collections/docs/points/scroll", json={"filter": {"year": 2020}})
    assert [p["payload"]["document_id"] for p in scrolled.json()["points"]] == ["int"]
