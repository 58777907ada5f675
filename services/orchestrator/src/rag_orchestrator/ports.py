"""What the RAG workflow needs from the services it calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from rag_common.contracts import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CollectionInfo,
    DeleteRequest,
    DocumentCount,
    GroundedCompletionRequest,
    Grounding,
    Point,
    SafetyVerdict,
    ScrollRequest,
    SearchHit,
    SearchRequest,
    StoredPoint,
)


class Embedder(Protocol):
    async def embed(self, texts: list[str]) -> list[list[float]]: ...


class Retriever(Protocol):
    async def ensure_collection(self, name: str, vector_size: int) -> CollectionInfo: ...

    async def upsert(self, collection: str, points: list[Point]) -> int: ...

    async def search(self, collection: str, query: SearchRequest) -> list[SearchHit]: ...

    async def list_collections(self) -> list[CollectionInfo]: ...

    async def delete_collection(self, name: str) -> None: ...

    async def delete(self, collection: str, request: DeleteRequest) -> int: ...

    async def scroll(self, collection: str, request: ScrollRequest) -> list[StoredPoint]: ...

    async def document_counts(self, collection: str) -> list[DocumentCount]: ...


class Reranker(Protocol):
    async def rerank(self, query: str, documents: list[str], top_n: int) -> list[int]:
        """Indices into `documents`, most relevant first, at most `top_n`."""
        ...


class Generator(Protocol):
    async def grounded(self, request: GroundedCompletionRequest) -> ChatCompletionResponse: ...

    async def grounded_stream(
        self, request: GroundedCompletionRequest
    ) -> AsyncIterator[ChatCompletionChunk]: ...

    async def chat(self, request: ChatCompletionRequest) -> ChatCompletionResponse: ...

    async def chat_stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]: ...


class SafetyChecker(Protocol):
    async def check(self, text: str, direction: str, tenant: str | None = None) -> SafetyVerdict: ...

    async def screen(self, passages: list[str], tenant: str | None = None) -> list[int]: ...

    async def grounding(self, answer: str, passages: list[str]) -> Grounding: ...


class Cache(Protocol):
    """Key-value cache with per-collection versions; every method degrades to a miss or a no-op."""

    async def versioned_get(
        self, collection: str, key_for: Callable[[int], str]
    ) -> tuple[int | None, bytes | None]:
        """The collection's version and the value under `key_for(version)` (version None: away)."""
        ...

    async def bump(self, collection: str) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes) -> None: ...

    async def get_vectors(self, keys: Sequence[str]) -> list[list[float] | None]: ...

    async def set_vectors(self, items: dict[str, list[float]]) -> None: ...

    async def semantic_entries(self, scope: str) -> Sequence[tuple[str, bytes]]:
        """(answer key, encoded question vector) pairs of one scope, newest first; empty when away.

        An adapter may return a `semantic_cache.SemanticEntries`, which keeps its scoring matrix.
        """
        ...

    async def add_semantic_entry(self, scope: str, key: str, vector: bytes, *, max_entries: int) -> None: ...
