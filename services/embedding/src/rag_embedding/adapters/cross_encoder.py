"""sentence-transformers CrossEncoder adapter; loads from a local folder only (no hub downloads)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sentence_transformers import CrossEncoder

from ..pieces import split_evenly
from .sentence_transformers import TokenizingTakesTurns


class ThreadSharedCrossEncoder(TokenizingTakesTurns, CrossEncoder):
    pass


class CrossEncoderReranker:
    def __init__(self, *, model_path: str, device: str, batch_size: int, workers: int = 1) -> None:
        """`workers`: the passages of one request are split between this many calls at once, as the
        embedding model's texts are (each call then runs on torch's process-wide thread count)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self._model = ThreadSharedCrossEncoder(model_path, device=device, local_files_only=True)
        self._batch_size = batch_size
        self._workers = workers
        self.model_name = Path(model_path).name

    def score(self, query: str, passages: list[str]) -> list[float]:
        pieces = split_evenly([(query, passage) for passage in passages], self._workers)
        if len(pieces) <= 1:
            return self._score(pieces[0]) if pieces else []
        with ThreadPoolExecutor(len(pieces), thread_name_prefix="rerank") as pool:
            return [score for part in pool.map(self._score, pieces) for score in part]

    def _score(self, pairs: list[tuple[str, str]]) -> list[float]:
        scores = self._model.predict(pairs, batch_size=self._batch_size, convert_to_numpy=True)
        return [float(score) for score in scores]
