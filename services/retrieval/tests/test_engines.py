from __future__ import annotations

from pathlib import Path

import pytest

from rag_retrieval.adapters.qdrant import QdrantVectorStore
from rag_retrieval.adapters.qdrant_edge import QdrantEdgeVectorStore
from rag_retrieval.main import connect_store
from rag_retrieval.settings import Settings


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, QdrantEdgeVectorStore),
        ({"engine": "local"}, QdrantVectorStore),
        ({"engine": "edge", "qdrant_url": "http://qdrant.invalid:6333"}, QdrantVectorStore),
    ],
)
async def test_a_server_url_always_wins_else_the_engine_setting_picks(
    tmp_path: Path, overrides: dict[str, str], expected: type
) -> None:
    store = connect_store(Settings(qdrant_path=str(tmp_path / "qdrant"), **overrides))  # type: ignore[arg-type]
    try:
        assert isinstance(store, expected)
    finally:
        await store.close()
