"""The packaged all-MiniLM-L6-v2 called from several threads at once, as the batcher's workers do."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rag_embedding.adapters.sentence_transformers import SentenceTransformerEmbedder

TEXTS = [f"passage {n} about retrieval " * (n % 5 + 1) for n in range(12)]


def test_threads_sharing_the_model_get_the_vectors_and_counts_of_one_thread() -> None:
    embedder = SentenceTransformerEmbedder(
        model_name="all-MiniLM-L6-v2", model_path=None, device="cpu", batch_size=4, normalize=True
    )
    vectors, counts = embedder.embed(TEXTS), embedder.token_counts(TEXTS)

    def call(n: int) -> object:  # padded encoding and unpadded counting interleave
        return embedder.embed(TEXTS) if n % 2 else embedder.token_counts(TEXTS)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(call, range(24)))
    for n, result in enumerate(results):
        if n % 2:
            np.testing.assert_allclose(np.array(result), np.array(vectors), atol=1e-5)
        else:
            assert result == counts
    assert len(set(counts)) > 1
