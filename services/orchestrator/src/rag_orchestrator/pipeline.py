from __future__ import annotations

from dataclasses import dataclass

from .ports import Cache, Embedder, Generator, Retriever, SafetyChecker
from .settings import Settings


@dataclass(frozen=True, slots=True)
class Pipeline:
    """The collaborators of every workflow, built once in the lifespan."""

    embedder: Embedder
    retriever: Retriever
    generator: Generator
    safety: SafetyChecker
    settings: Settings
    cache: Cache
