"""sentence-transformers CrossEncoder adapter; loads from a local folder only (no hub downloads)."""

from __future__ import annotations

import os
from pathlib import Path

from sentence_transformers import CrossEncoder


class CrossEncoderReranker:
    def __init__(self, *, model_path: str, device: str, batch_size: int) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self._model = CrossEncoder(model_path, device=device, local_files_only=True)
        self._batch_size = batch_size
        self.model_name = Path(model_path).name

    def score(self, query: str, passages: list[str]) -> list[float]:
        scores = self._model.predict(
            [(query, passage) for passage in passages], batch_size=self._batch_size, convert_to_numpy=True
        )
        return [float(score) for score in scores]
