from __future__ import annotations

import base64
import math
import struct
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from rag_common.routing import LeanRoute
from rag_embedding.main import create_app
from rag_embedding.routes import router
from rag_embedding.settings import Settings


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings())
    async with LifespanManager(app, startup_timeout=120) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://embedding") as http:
            yield http


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_embeddings_are_openai_shaped_unit_vectors(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/embeddings", json={"input": ["a cat sat on the mat", "hello"]})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert body["model"] == "all-MiniLM-L6-v2"
    assert [item["index"] for item in body["data"]] == [0, 1]
    vector = body["data"][0]["embedding"]
    assert len(vector) == 384
    assert math.isclose(sum(x * x for x in vector), 1.0, rel_tol=1e-3)
    assert body["usage"]["prompt_tokens"] > 4


async def test_similar_sentences_are_closer_than_unrelated_ones(client: httpx.AsyncClient) -> None:
    texts = [
        "The cat sleeps on the sofa.",
        "A kitten is napping on the couch.",
        "Interest rates rose in May.",
    ]
    data = (await client.post("/v1/embeddings", json={"input": texts})).json()["data"]
    cat, kitten, rates = (item["embedding"] for item in data)
    assert cosine(cat, kitten) > cosine(cat, rates) + 0.3


async def test_single_string_input_gives_one_vector(client: httpx.AsyncClient) -> None:
    body = (await client.post("/v1/embeddings", json={"input": "one"})).json()
    assert len(body["data"]) == 1


async def test_unknown_model_is_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/embeddings", json={"input": "x", "model": "text-embedding-3-large"})
    assert response.status_code == 404
    assert "all-MiniLM-L6-v2" in response.json()["detail"]


@pytest.mark.parametrize("payload", [{"input": []}, {"input": ""}, {"input": ["ok", " "]}, {}])
async def test_empty_input_is_rejected(client: httpx.AsyncClient, payload: dict[str, object]) -> None:
    response = await client.post("/v1/embeddings", json=payload)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_models_lists_the_served_model(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/models")).json()["data"][0]["id"] == "all-MiniLM-L6-v2"


async def test_text_over_the_character_limit_is_422_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/embeddings", json={"input": ["ok", "x" * 20_001]})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("input[1] has 20001 characters")


async def test_base64_encoding_is_little_endian_float32_of_the_same_vector(client: httpx.AsyncClient) -> None:
    as_floats = (await client.post("/v1/embeddings", json={"input": "tea"})).json()["data"][0]["embedding"]
    encoded = (await client.post("/v1/embeddings", json={"input": "tea", "encoding_format": "base64"})).json()
    decoded = struct.unpack(f"<{len(as_floats)}f", base64.b64decode(encoded["data"][0]["embedding"]))
    assert all(
        math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6) for a, b in zip(as_floats, decoded, strict=True)
    )


def test_a_valid_embeddings_request_skips_fastapis_generic_handling() -> None:
    """`LeanRoute` (rag_common.routing): same answers and OpenAPI, less CPU per one-text request."""
    lean = {route.path for route in router.routes if isinstance(route, LeanRoute) and route.is_lean}
    assert lean == {"/v1/embeddings"}
