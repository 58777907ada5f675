"""A sentence-transformers model exported to ONNX, for onnxruntime (`EMBEDDING_BACKEND=onnx-export`).

The whole pipeline up to the sentence vector (transformer, pooling, any normalisation) is one graph,
and the tokenizer is saved beside it with the model's truncation and padding, so the export folder
needs nothing else to reproduce the torch model's vectors. onnxruntime then runs a whole call without
the GIL, which torch's eager forward retakes between each of its operations.

Exports are kept in a cache folder under a key of the model folder's content, the torch version and
this format, so a restart loads the file made before instead of exporting again; torch is imported
only to export.
`python -m rag_embedding.adapters.onnx_export` makes the export ahead of time (a Docker build does)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .packaged import default_model_path

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

EXPORT_FORMAT = "2"  # part of the cache key: bump it when the export below changes
MODEL_FILE, TOKENIZER_FILE = "model.onnx", "tokenizer.json"
OUTPUT = "sentence_embedding"
OPSET = 17


class ExportRefused(ValueError):
    """The model's vectors could not be reproduced by the export; run it on EMBEDDING_BACKEND=torch."""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rag-platform" / "embedding-onnx"


def exported_model(model_path: str | None, cache_dir: str | None) -> Path:
    """The export folder of the sentence-transformers folder `model_path` (default: the packaged
    all-MiniLM-L6-v2), made now unless the cache already holds it."""
    source = Path(model_path) if model_path else default_model_path()
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a folder (a model saved by sentence-transformers)")
    target = (Path(cache_dir) if cache_dir else default_cache_dir()) / f"{source.name}-{_content_key(source)}"
    if (target / MODEL_FILE).is_file():
        return target
    log.info("exporting %s to ONNX in %s (once; later starts load it)", source, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        export(source, staging)
        staging.rename(target)  # atomic; a concurrent exporter that finished first wins
    except OSError:
        if not (target / MODEL_FILE).is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def export(source: Path, folder: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    # Eager attention: its graph runs chunks of ~110 tokens 20% faster on onnxruntime than the graph of
    # torch's fused attention (93-95 against 77-79 chunks/s; the same on short sentences).
    model = SentenceTransformer(
        str(source), device="cpu", local_files_only=True, model_kwargs={"attn_implementation": "eager"}
    ).eval()
    refuse_unless_reproducible(model, source)
    tokenizer = model.tokenizer
    inputs = [
        name
        for name in ("input_ids", "token_type_ids", "attention_mask")
        if name in tokenizer.model_input_names
    ]
    example = tokenizer(["an example", "a longer example, padded"], padding=True, return_tensors="pt")
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated, but its graph runs ~10% faster on onnxruntime
        # than the torch.export-based one's (measured here on all-MiniLM-L6-v2, with or without
        # onnxruntime's transformer optimiser).
        warnings.simplefilter("ignore", DeprecationWarning)
        # Shape checks the trace fixes (the mask is as long as the input): true for every batch.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # "aten::index ... negative indices": the indices are positions, never negative; the tests
        # compare padded and truncated batches with torch.
        warnings.filterwarnings("ignore", "Exporting aten::index operator", UserWarning)
        torch.onnx.export(
            sentence_vectors(model, inputs),
            tuple(example[name] for name in inputs),
            str(folder / MODEL_FILE),
            dynamo=False,
            input_names=inputs,
            output_names=[OUTPUT],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in inputs} | {OUTPUT: {0: "batch"}},
            opset_version=OPSET,
        )
    fast = tokenizer.backend_tokenizer
    fast.enable_truncation(max_length=model.max_seq_length)
    fast.enable_padding(
        pad_id=tokenizer.pad_token_id, pad_token=tokenizer.pad_token, direction=tokenizer.padding_side
    )
    fast.save(str(folder / TOKENIZER_FILE))


def refuse_unless_reproducible(model: SentenceTransformer, source: Path) -> None:
    """What the export cannot carry: a prompt added to every text, a tokenizer not saved as tokenizer.json."""
    if model.default_prompt_name:
        raise ExportRefused(
            f"{source} prepends the prompt '{model.default_prompt_name}' to every text; "
            "the export does not. Use EMBEDDING_BACKEND=torch for this model."
        )
    if not getattr(model.tokenizer, "is_fast", False):
        raise ExportRefused(
            f"{source} has no fast tokenizer (tokenizer.json), which the export needs. "
            "Use EMBEDDING_BACKEND=torch for this model."
        )


def sentence_vectors(model: SentenceTransformer, inputs: list[str]) -> torch.nn.Module:
    """The sentence-transformers pipeline as a function of the tokenizer's tensors, in that order."""
    import torch

    class SentenceVectors(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(dict(zip(inputs, tensors, strict=True)))[OUTPUT]

    return SentenceVectors()


def _content_key(source: Path) -> str:
    """12 hex of a sha256 over every file of the model folder, the torch version and the format."""
    digest = hashlib.sha256(f"{EXPORT_FORMAT}|{importlib.metadata.version('torch')}".encode())
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(source)).encode())
        with path.open("rb") as file:
            digest.update(hashlib.file_digest(file, "sha256").digest())
    return digest.hexdigest()[:12]


def main() -> None:
    """Export the settings' model (EMBEDDING_MODEL_PATH, EMBEDDING_ONNX_CACHE_DIR) and print its folder."""
    from ..settings import Settings

    settings = Settings()
    logging.basicConfig(level=logging.INFO)
    sys.stdout.write(f"{exported_model(settings.model_path, settings.onnx_cache_dir)}\n")


if __name__ == "__main__":
    main()
