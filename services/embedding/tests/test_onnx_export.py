"""EMBEDDING_BACKEND=onnx-export: a sentence-transformers model exported to ONNX reproduces its vectors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager

from rag_common.model_slots import MODEL_VERSION_HEADER, version_id
from rag_embedding.adapters.onnx import OnnxEmbedder
from rag_embedding.adapters.onnx_export import MODEL_FILE, ExportRefused, exported_model
from rag_embedding.adapters.sentence_transformers import SentenceTransformerEmbedder
from rag_embedding.main import create_app
from rag_embedding.settings import Settings

from .tiny_models import save_tiny_sentence_transformer

SENTENCES = [
    "The cat sleeps on the sofa.",
    "A kitten is napping on the couch.",
    "Retrieval augmented generation grounds answers in passages. " * 40,  # past 256 tokens: truncated
    "ok",
]
TINY_SENTENCES = ["green tea is made from leaves of the tea", "moscow", "what is roasted coffee"]


def torch_and_onnx(
    model_path: str | None, cache_dir: Path
) -> tuple[SentenceTransformerEmbedder, OnnxEmbedder]:
    folder = exported_model(model_path, str(cache_dir))
    return (
        SentenceTransformerEmbedder(
            model_name="torch", model_path=model_path, device="cpu", batch_size=32, normalize=False
        ),
        OnnxEmbedder(
            model_name="onnx", onnx_path=str(folder / MODEL_FILE), threads=1, batch_size=32, normalize=False
        ),
    )


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def test_the_packaged_models_export_gives_its_vectors_and_token_counts(cache_dir: Path) -> None:
    reference, onnx = torch_and_onnx(None, cache_dir)
    np.testing.assert_allclose(onnx.embed(SENTENCES), reference.embed(SENTENCES), atol=1e-5)
    assert onnx.token_counts(SENTENCES) == reference.token_counts(SENTENCES) == [9, 11, 256, 3]
    alone = [onnx.embed([text])[0] for text in SENTENCES]
    np.testing.assert_allclose(alone, onnx.embed(SENTENCES), atol=1e-5)


def test_a_models_own_pooling_and_truncation_travel_with_the_export(tmp_path: Path, cache_dir: Path) -> None:
    model = save_tiny_sentence_transformer(tmp_path, pooling="cls", max_seq_length=6)
    reference, onnx = torch_and_onnx(str(model), cache_dir)
    np.testing.assert_allclose(onnx.embed(TINY_SENTENCES), reference.embed(TINY_SENTENCES), atol=1e-5)
    assert onnx.token_counts(TINY_SENTENCES) == [6, 3, 6]


def test_an_export_is_made_once_and_a_changed_model_gets_its_own(tmp_path: Path, cache_dir: Path) -> None:
    model = save_tiny_sentence_transformer(tmp_path / "a", seed=1)
    first = exported_model(str(model), str(cache_dir))
    made = (first / MODEL_FILE).stat().st_mtime_ns
    assert exported_model(str(model), str(cache_dir)) == first
    assert (first / MODEL_FILE).stat().st_mtime_ns == made
    retrained = save_tiny_sentence_transformer(tmp_path / "b", seed=2)
    assert exported_model(str(retrained), str(cache_dir)) != first
    assert not [p.name for p in cache_dir.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_a_model_that_prompts_every_text_is_refused_naming_the_torch_backend(tmp_path: Path) -> None:
    model = save_tiny_sentence_transformer(tmp_path, default_prompt="query: ")
    with pytest.raises(ExportRefused, match="EMBEDDING_BACKEND=torch"):
        exported_model(str(model), str(tmp_path / "cache"))
    assert not list((tmp_path / "cache").iterdir())


async def test_the_service_serves_the_export_under_the_torch_models_name_and_version(cache_dir: Path) -> None:
    app = create_app(Settings(backend="onnx-export", onnx_cache_dir=str(cache_dir)))
    async with LifespanManager(app, startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://embedding") as client:
            response = await client.post("/v1/embeddings", json={"input": SENTENCES[:2]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "all-MiniLM-L6-v2"
    assert response.headers[MODEL_VERSION_HEADER] == version_id("all-MiniLM-L6-v2", {"backend": "torch"})
    reference = SentenceTransformerEmbedder(
        model_name="torch", model_path=None, device="cpu", batch_size=32, normalize=True
    )
    vectors = [item["embedding"] for item in body["data"]]
    np.testing.assert_allclose(vectors, reference.embed(SENTENCES[:2]), atol=1e-5)
    assert body["usage"]["prompt_tokens"] == 9 + 11


def test_two_processes_exporting_at_once_both_get_the_one_complete_export(tmp_path: Path) -> None:
    model = save_tiny_sentence_transformer(tmp_path / "model-source")
    cache = tmp_path / "cache"
    code = (
        "import sys\nfrom rag_embedding.adapters.onnx_export import exported_model\n"
        "print(exported_model(sys.argv[1], sys.argv[2]))\n"
    )
    exporters = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(model), str(cache)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    folders = {exporter.communicate(timeout=120)[0].strip() for exporter in exporters}
    assert [exporter.returncode for exporter in exporters] == [0, 0]
    assert [str(path) for path in cache.iterdir()] == list(folders)
    assert sorted(p.name for p in Path(folders.pop()).iterdir()) == [MODEL_FILE, "tokenizer.json"]
