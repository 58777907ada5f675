from __future__ import annotations

import pytest

from rag_orchestrator.cache import NoCache
from rag_orchestrator.pipeline import Pipeline
from rag_orchestrator.settings import Settings

from .fakes import BagOfWordsEmbedder, KeywordSafety, MemoryRetriever, QuotingGenerator


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline(
        embedder=BagOfWordsEmbedder(),
        retriever=MemoryRetriever(),
        generator=QuotingGenerator(),
        safety=KeywordSafety(),
        settings=Settings(chunk_size=120, chunk_overlap=20, embed_batch_size=2),
        cache=NoCache(),
    )
