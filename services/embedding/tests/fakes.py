"""Small real embedders for tests that need no model."""

from __future__ import annotations


class CountingEmbedder:
    """A real, tiny embedder: a text's vector is [its length, scale] (exact in float32)."""

    dimension = 2

    def __init__(self, model_name: str, scale: float = 1.0) -> None:
        self.model_name = model_name
        self.scale = scale
        self.embedded: list[str] = []

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        return [[float(len(text)), self.scale] for text in texts]

    def token_counts(self, texts: list[str]) -> list[int]:
        return [len(text.split()) for text in texts]
