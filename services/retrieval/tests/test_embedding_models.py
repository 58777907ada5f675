"""Vectors of different embedding models never mix; a collection is replaced whole or not at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from rag_retrieval.settings import Settings

from .test_api import point, serve

MODEL_A = "all-MiniLM-L6-v2"
MODEL_B = "all-MiniLM-L6-v2-onnx-int8"


@pytest.fixture(params=["edge", "local"])
async def client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(Settings(engine=request.param, qdrant_path=str(tmp_path / "qdrant"))) as http:
        yield http


async def create(client: httpx.AsyncClient, name: str, model: str | None, size: int = 3) -> httpx.Response:
    body = {"name": name, "vector_size": size, "embedding_model": model}
    return await client.post("/v1/collections", json=body)


async def upsert(client: httpx.AsyncClient, name: str, model: str | None, *texts: str) -> httpx.Response:
    points = [point([1.0, float(i), 0.0], text=text, document_id=text) for i, text in enumerate(texts)]
    return await client.put(
        f"/v1/collections/{name}/points", json={"points": points, "embedding_model": model}
    )


async def search(client: httpx.AsyncClient, name: str, model: str | None) -> httpx.Response:
    body = {"vector": [1.0, 0.0, 0.0], "top_k": 10, "embedding_model": model}
    return await client.post(f"/v1/collections/{name}/search", json=body)


def texts(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(hit["payload"]["text"] for hit in response.json()["hits"])


async def test_a_collection_records_and_reports_its_embedding_model(client: httpx.AsyncClient) -> None:
    created = await create(client, "docs", MODEL_A)
    assert created.status_code == 201
    assert created.json()["embedding_model"] == MODEL_A
    assert (await client.get("/v1/collections/docs")).json()["embedding_model"] == MODEL_A
    listed = (await client.get("/v1/collections")).json()["collections"]
    assert [(c["name"], c["embedding_model"]) for c in listed] == [("docs", MODEL_A)]


async def test_requests_with_another_model_are_refused_with_a_409_naming_both(
    client: httpx.AsyncClient,
) -> None:
    await create(client, "docs", MODEL_A)
    assert (await upsert(client, "docs", MODEL_A, "kept")).status_code == 200

    for refused in (
        await create(client, "docs", MODEL_B),
        await upsert(client, "docs", MODEL_B, "mixed"),
        await search(client, "docs", MODEL_B),
    ):
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["detail"].startswith(
            f"Collection 'docs' holds vectors of model '{MODEL_A}'; this request's vectors are from "
            f"model '{MODEL_B}'."
        )
        assert (problem["collection_model"], problem["request_model"]) == (MODEL_A, MODEL_B)
    assert texts(await search(client, "docs", MODEL_A)) == ["kept"]
    assert texts(await search(client, "docs", None)) == ["kept"]  # callers that name no model still work


async def test_a_vector_of_another_dimension_is_a_422_problem_never_a_500(client: httpx.AsyncClient) -> None:
    await create(client, "docs", MODEL_A)
    response = await client.post(
        "/v1/collections/docs/search", json={"vector": [1.0, 0.0], "embedding_model": MODEL_A}
    )
    assert response.status_code == 422
    assert "size 3" in response.json()["detail"]
    assert (await create(client, "docs", MODEL_A, size=4)).status_code == 409


async def test_a_write_locked_collection_refuses_writes_but_serves_reads(client: httpx.AsyncClient) -> None:
    await create(client, "docs", MODEL_A)
    assert (await upsert(client, "docs", MODEL_A, "before")).status_code == 200
    locked = await client.put("/v1/collections/docs/write-lock", json={"owner": "reembed job 1"})
    assert locked.json()["write_lock"] == "reembed job 1"

    refused = [
        await upsert(client, "docs", MODEL_A, "during"),
        await client.post("/v1/collections/docs/points/delete", json={"filter": {"document_id": "before"}}),
    ]
    assert [r.status_code for r in refused] == [409, 409]
    assert "reembed job 1" in refused[0].json()["detail"]
    assert texts(await search(client, "docs", MODEL_A)) == ["before"]

    assert (await client.delete("/v1/collections/docs/write-lock")).json()["write_lock"] is None
    assert (await upsert(client, "docs", MODEL_A, "after")).status_code == 200


async def test_replace_serves_the_new_collection_under_the_old_name_and_drops_the_old(
    client: httpx.AsyncClient,
) -> None:
    await create(client, "docs", MODEL_A)
    await upsert(client, "docs", MODEL_A, "old")
    await create(client, "shadow-1", MODEL_B)
    await upsert(client, "shadow-1", MODEL_B, "new")

    replaced = await client.post("/v1/collections/docs/replace", json={"source": "shadow-1"})
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["name"], replaced.json()["embedding_model"]) == ("docs", MODEL_B)
    assert texts(await search(client, "docs", MODEL_B)) == ["new"]
    assert (await search(client, "docs", MODEL_A)).status_code == 409
    assert [c["name"] for c in (await client.get("/v1/collections")).json()["collections"]] == ["docs"]

    # A second replace repoints the alias and drops the collection it pointed at.
    await create(client, "shadow-2", MODEL_A)
    await upsert(client, "shadow-2", MODEL_A, "newer")
    assert (await client.post("/v1/collections/docs/replace", json={"source": "shadow-2"})).status_code == 200
    assert texts(await search(client, "docs", MODEL_A)) == ["newer"]
    assert (await client.get("/v1/collections/shadow-1")).status_code == 404
    assert (await upsert(client, "docs", MODEL_A, "written")).status_code == 200

    assert (await client.delete("/v1/collections/docs")).status_code == 204
    assert (await client.get("/v1/collections")).json() == {"collections": []}


async def test_replace_from_a_missing_collection_changes_nothing(client: httpx.AsyncClient) -> None:
    await create(client, "docs", MODEL_A)
    await upsert(client, "docs", MODEL_A, "old")
    response = await client.post("/v1/collections/docs/replace", json={"source": "missing"})
    assert response.status_code == 404
    assert (await client.post("/v1/collections/docs/replace", json={"source": "docs"})).status_code == 409
    assert texts(await search(client, "docs", MODEL_A)) == ["old"]


async def test_scroll_pages_through_every_point(client: httpx.AsyncClient) -> None:
    await create(client, "docs", MODEL_A)
    await upsert(client, "docs", MODEL_A, *[f"t{i}" for i in range(7)])
    seen: list[str] = []
    offset: str | None = None
    while True:
        page = await client.post("/v1/collections/docs/points/scroll", json={"limit": 3, "offset": offset})
        seen.extend(p["payload"]["text"] for p in page.json()["points"])
        if (offset := page.json()["next_offset"]) is None:
            break
    assert sorted(seen) == [f"t{i}" for i in range(7)]


@pytest.mark.parametrize("engine", ["edge", "local"])
async def test_a_replaced_collection_and_its_model_survive_a_restart(engine: str, tmp_path: Path) -> None:
    settings = Settings(engine=engine, qdrant_path=str(tmp_path / "qdrant"))
    async with serve(settings) as first:
        await create(first, "docs", MODEL_A)
        await create(first, "shadow", MODEL_B)
        await upsert(first, "shadow", MODEL_B, "new")
        await first.post("/v1/collections/docs/replace", json={"source": "shadow"})
    async with serve(settings) as second:
        assert (await second.get("/v1/collections/docs")).json()["embedding_model"] == MODEL_B
        assert texts(await search(second, "docs", MODEL_B)) == ["new"]
        assert [c["name"] for c in (await second.get("/v1/collections")).json()["collections"]] == ["docs"]
