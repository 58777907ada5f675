"""onnxruntime adapter: the same pipeline as sentence-transformers' without torch. Two kinds of file:
an export of a sentence-transformers model (`onnx_export`), whose graph ends in the sentence vector
and whose tokenizer.json carries the model's truncation and padding; or a bare transformer such as
the packaged int8 all-MiniLM-L6-v2, which ends in the token vectors and gets that model's pipeline
here (BERT tokens, truncation at 256, mean pooling over the attention mask). Then L2 normalisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from tokenizers import Encoding, Tokenizer

from .packaged import default_model_path, default_onnx_path

MAX_SEQ_LENGTH = 256  # sentence_bert_config.json of all-MiniLM-L6-v2
SENTENCE_VECTORS, TOKEN_VECTORS = "sentence_embedding", "last_hidden_state"


def load_tokenizer(onnx_path: Path, *, exported: bool = False) -> Tokenizer:
    """The tokenizer.json beside the ONNX file, else the one of the packaged torch model (the same
    vocabulary: the int8 file is an export of it). Padding to the longest text of the batch. An
    export's tokenizer was saved with its model's truncation and padding; others get
    all-MiniLM-L6-v2's (a hub tokenizer.json truncates at 128, sentence-transformers at 256)."""
    beside = onnx_path.parent / "tokenizer.json"
    tokenizer = Tokenizer.from_file(
        str(beside if beside.exists() else default_model_path() / "tokenizer.json")
    )
    if exported:
        return tokenizer
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
        self,
        *,
        model_name: str,
        onnx_path: str | None,
        threads: int,
        batch_size: int,
        normalize: bool,
        batch_tokens: int = 512,
    ) -> None:
        path = Path(onnx_path) if onnx_path else default_onnx_path()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._inputs = {item.name for item in self._session.get_inputs()}
        outputs = {item.name for item in self._session.get_outputs()}
        self._pooled = SENTENCE_VECTORS in outputs  # else the token vectors, mean-pooled here
        self._tokenizer = load_tokenizer(path, exported=self._pooled)
        self._batch_size = batch_size
        self._batch_tokens = batch_tokens
        self._normalize = normalize
        self.model_name = model_name
        width = self._session.get_outputs()[0].shape[-1]  # symbolic in some graphs: then measured
        self.dimension = width if isinstance(width, int) else self._measured_width()

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Tokenized once, then encoded in batches of texts of similar length, as sentence-transformers
        does: a batch is padded to its longest text, so mixed lengths waste most of the work (CISI's
        chunks: 44 texts/s unsorted). A batch also holds at most `batch_tokens` tokens, padding
        included: long texts in big batches spill the CPU's caches."""
        feed = self._feed(self._tokenizer.encode_batch(texts))
        lengths = feed["attention_mask"].sum(axis=1)
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for batch in self._batches(lengths):
            longest = int(lengths[batch].max())
            vectors[batch] = self._embed_batch({name: array[batch, :longest] for name, array in feed.items()})
        return vectors.tolist()

    def _batches(self, lengths: NDArray[np.int64]) -> list[NDArray[np.intp]]:
        """Longest texts first; each batch as many texts as `batch_size` and `batch_tokens` allow."""
        by_length = np.argsort(-lengths, kind="stable")
        batches, start = [], 0
        while start < len(by_length):
            fits = max(1, self._batch_tokens // max(1, int(lengths[by_length[start]])))
            end = start + min(self._batch_size, fits)
            batches.append(by_length[start:end])
            start = end
        return batches

    def token_counts(self, texts: list[str]) -> list[int]:
        return [sum(encoding.attention_mask) for encoding in self._tokenizer.encode_batch(texts)]

    def _embed_batch(self, feed: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        if self._pooled:
            (pooled,) = self._session.run([SENTENCE_VECTORS], feed)
        else:
            (hidden,) = self._session.run([TOKEN_VECTORS], feed)
            pooled = mean_pool(hidden, feed["attention_mask"])
        return l2_normalise(pooled) if self._normalize else pooled

    def _measured_width(self) -> int:
        return int(self._embed_batch(self._feed(self._tokenizer.encode_batch(["width"]))).shape[-1])

    def _feed(self, encodings: list[Encoding]) -> dict[str, NDArray[np.int64]]:
        arrays = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        return {name: value for name, value in arrays.items() if name in self._inputs}
