"""The onnxruntime backend against the torch one it stands in for, and the service running it."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager

from rag_embedding.adapters.onnx import OnnxEmbedder
from rag_embedding.adapters.sentence_transformers import SentenceTransformerEmbedder
from rag_embedding.main import create_app
from rag_embedding.settings import Settings

SENTENCES = [
    "The cat sleeps on the sofa.",
    "A kitten is napping on the couch.",
    "Interest rates rose in May.",
    "Retrieval augmented generation grounds answers in passages. " * 40,  # past 256 tokens: truncated
    "ok",
]


@pytest.fixture(scope="module")
def onnx_embedder() -> OnnxEmbedder:
    return OnnxEmbedder(model_name="onnx", onnx_path=None, threads=1, batch_size=4, normalize=True)


def test_onnx_vectors_match_the_torch_model(onnx_embedder: OnnxEmbedder) -> None:
    torch_embedder = SentenceTransformerEmbedder(
        model_name="torch", model_path=None, device="cpu", batch_size=32, normalize=True
    )
    onnx = np.array(onnx_embedder.embed(SENTENCES))
    reference = np.array(torch_embedder.embed(SENTENCES))
    assert onnx.shape == (len(SENTENCES), 384)
    assert np.all((onnx * reference).sum(axis=1) > 0.99)
    assert onnx_embedder.token_counts(SENTENCES) == torch_embedder.token_counts(SENTENCES)


def test_a_text_gets_the_same_vector_alone_and_in_a_padded_batch(onnx_embedder: OnnxEmbedder) -> None:
    batch = np.array(onnx_embedder.embed(SENTENCES))
    alone = np.array([onnx_embedder.embed([text])[0] for text in SENTENCES])
    np.testing.assert_allclose(batch, alone, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, rtol=1e-5)


async def test_the_service_on_onnx_reports_a_model_id_of_its_own() -> None:
    app = create_app(Settings(backend="onnx", onnx_threads=1))
    async with LifespanManager(app, startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://embedding") as client:
            response = await client.post("/v1/embeddings", json={"input": SENTENCES[:2]})
            models = (await client.get("/v1/models")).json()
            torch_name = await client.post("/v1/embeddings", json={"input": "x", "model": "all-MiniLM-L6-v2"})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "all-MiniLM-L6-v2-onnx-int8"
    assert [len(item["embedding"]) for item in body["data"]] == [384, 384]
    assert body["usage"]["prompt_tokens"] == 9 + 11
    assert [card["id"] for card in models["data"]] == ["all-MiniLM-L6-v2-onnx-int8"]
    assert torch_name.status_code == 404


class RecordingSession:
    """The real onnxruntime session, recording the shape of every batch it is given."""

    def __init__(self, session: object) -> None:
        self._session = session
        self.shapes: list[tuple[int, ...]] = []

    def run(self, outputs: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.shapes.append(feed["input_ids"].shape)
        return self._session.run(outputs, feed)  # type: ignore[attr-defined, no-any-return]


def test_no_batch_holds_more_tokens_than_the_budget_and_vectors_do_not_change() -> None:
    unlimited = OnnxEmbedder(model_name="onnx", onnx_path=None, threads=1, batch_size=8, normalize=True)
    budgeted = OnnxEmbedder(
        model_name="onnx", onnx_path=None, threads=1, batch_size=8, normalize=True, batch_tokens=40
    )
    recording = RecordingSession(budgeted._session)
    budgeted._session = recording  # type: ignore[assignment]
    np.testing.assert_allclose(budgeted.embed(SENTENCES), unlimited.embed(SENTENCES), atol=1e-5)
    assert sorted(rows for rows, _ in recording.shapes) == [1, 1, 3]  # 256 tokens alone, then the short
    assert all(rows == 1 or rows * tokens <= 40 for rows, tokens in recording.shapes)
