from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


class Embedder(Protocol):
    """Turns texts into fixed-size vectors; blocking, call it off the event loop."""

    model_name: str
    dimension: int

    def embed(self, texts: list[str]) -> list[list[float]]: ...

    def token_counts(self, texts: list[str]) -> list[int]: ...


class Reranker(Protocol):
    """Scores how relevant each passage is to a query (higher is better); blocking."""

    model_name: str

    def score(self, query: str, passages: list[str]) -> list[float]: ...


@dataclass(frozen=True, slots=True)
class CachedVector:
    vector: list[float]
    tokens: int


class VectorCache(Protocol):
    """Vectors by key; a failing store reads as all misses and skips writes, never raises."""

    async def get_many(self, keys: Sequence[str]) -> list[CachedVector | None]: ...

    async def put_many(self, items: Mapping[str, CachedVector]) -> None: ...
