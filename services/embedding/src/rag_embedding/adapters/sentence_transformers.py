"""sentence-transformers adapter; loads from a local folder only (no hub downloads)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer

from .packaged import default_model_path


class TokenizingTakesTurns:
    """For a sentence-transformers model whose calls run on several threads at once. The weights are
    only read, but transformers reconfigures the shared fast tokenizer's padding and truncation
    before a call whose settings differ from the last one (encoding pads, counting tokens does not):
    two threads could each tokenize with the other's settings, and tokenizers has raised `Already
    borrowed` there (huggingface/tokenizers#537). So tokenizing takes turns; the model calls do not."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokenizing = threading.Lock()

    def preprocess(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        with self.tokenizing:
            return super().preprocess(*args, **kwargs)  # type: ignore[misc]


class ThreadSharedSentenceTransformer(TokenizingTakesTurns, SentenceTransformer):
    pass


class SentenceTransformerEmbedder:
    def __init__(
        self,
        *,
        model_name: str,
        model_path: str | None,
        device: str,
        batch_size: int,
        normalize: bool,
        threads: int | None = None,
    ) -> None:
        """`threads`: torch's threads per model call (process-wide); None leaves torch's default."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if threads is not None:
            torch.set_num_threads(threads)
        path = Path(model_path) if model_path else default_model_path()
        self._model = ThreadSharedSentenceTransformer(str(path), device=device, local_files_only=True)
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
        with self._model.tokenizing:
            encoded = self._model.tokenizer(texts, add_special_tokens=True, truncation=True)
        return [len(ids) for ids in encoded["input_ids"]]
