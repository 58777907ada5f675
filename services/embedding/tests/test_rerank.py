"""POST /v1/rerank with a real CrossEncoder loaded from a tiny random BERT saved in the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from rag_embedding.adapters.cross_encoder import CrossEncoderReranker
from rag_embedding.main import create_app
from rag_embedding.settings import Settings

from .fakes import CountingEmbedder
from .tiny_models import save_tiny_cross_encoder

QUERY = "what is green tea made from"
DOCUMENTS = [
    "the railway runs to moscow",
    "green tea is made from leaves",
    "coffee beans roasted",
    "tea leaves",
    "moscow",
]


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    model = save_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-reranker"))
    settings = Settings(rerank_model_path=str(model), rerank_max_documents=8)
    app = create_app(settings, embedder=CountingEmbedder("counting"))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://embedding") as http:
            yield http


async def rerank(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await client.post("/v1/rerank", json={"query": QUERY, "documents": DOCUMENTS} | body)


async def test_results_are_every_document_sorted_by_a_deterministic_score(client: httpx.AsyncClient) -> None:
    first = (await rerank(client)).json()
    again = (await rerank(client)).json()
    assert first == again
    scores = [result["score"] for result in first["results"]]
    assert scores == sorted(scores, reverse=True)
    assert sorted(result["index"] for result in first["results"]) == list(range(len(DOCUMENTS)))
    assert len(set(scores)) > 1
    assert first["model"].startswith("tiny-reranker")


async def test_a_document_scores_the_same_whatever_else_is_in_the_request(client: httpx.AsyncClient) -> None:
    everything = (await rerank(client)).json()["results"]
    alone = (await rerank(client, documents=[DOCUMENTS[3]])).json()["results"]
    by_index = {result["index"]: result["score"] for result in everything}
    assert alone[0]["index"] == 0
    assert alone[0]["score"] == pytest.approx(by_index[3], abs=1e-5)


def test_passages_split_between_calls_at_once_score_as_in_one_call(tmp_path: Path) -> None:
    model = str(save_tiny_cross_encoder(tmp_path / "tiny-reranker"))
    one_call = CrossEncoderReranker(model_path=model, device="cpu", batch_size=2)
    four_calls = CrossEncoderReranker(model_path=model, device="cpu", batch_size=2, workers=4)
    assert four_calls.score(QUERY, DOCUMENTS * 3) == pytest.approx(
        one_call.score(QUERY, DOCUMENTS * 3), abs=1e-5
    )


async def test_top_n_keeps_only_the_best(client: httpx.AsyncClient) -> None:
    everything = (await rerank(client)).json()["results"]
    best_two = (await rerank(client, top_n=2)).json()["results"]
    assert best_two == everything[:2]


async def test_too_many_documents_is_422_naming_the_limit(client: httpx.AsyncClient) -> None:
    response = await rerank(client, documents=["tea"] * 9)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "the limit is 8" in response.json()["detail"]


@pytest.mark.parametrize("body", [{"documents": []}, {"query": " "}, {"top_n": 0}])
async def test_malformed_requests_are_422(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    response = await rerank(client, **body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_reranker_is_listed_beside_the_embedding_model(client: httpx.AsyncClient) -> None:
    models = (await client.get("/v1/models")).json()["data"]
    assert models[0]["id"] == "counting"
    assert models[1]["id"].startswith("tiny-reranker")


async def test_without_a_reranker_the_endpoint_is_501_problem() -> None:
    app = create_app(Settings(), embedder=CountingEmbedder("counting"))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://embedding") as http:
            response = await rerank(http)
    assert response.status_code == 501
    assert response.headers["content-type"] == "application/problem+json"
    assert "EMBEDDING_RERANK_MODEL_PATH" in response.json()["detail"]
