from __future__ import annotations

from typing import Protocol


class Embedder(Protocol):
    """Turns texts into fixed-size vectors; blocking, call it off the event loop."""

    model_name: str
    dimension: int

    def embed(self, texts: list[str]) -> list[list[float]]: ...

    def token_counts(self, texts: list[str]) -> list[int]: ...
