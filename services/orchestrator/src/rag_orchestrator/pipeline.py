from __future__ import annotations

from dataclasses import dataclass, field

from .memory import ConversationStore, NoMemory
from .ports import Cache, Embedder, Generator, Reranker, Retriever, SafetyChecker
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
    memory: ConversationStore = field(default_factory=NoMemory)
    reranker: Reranker | None = None
