"""What the RAG workflow needs from the services it calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from rag_common.contracts import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CollectionInfo,
    GroundedCompletionRequest,
    Point,
    SafetyVerdict,
    SearchHit,
    SearchRequest,
)


class Embedder(Protocol):
    async def embed(self, texts: list[str]) -> list[list[float]]: ...


class Retriever(Protocol):
    async def ensure_collection(self, name: str, vector_size: int) -> CollectionInfo: ...

    async def upsert(self, collection: str, points: list[Point]) -> int: ...

    async def search(self, collection: str, query: SearchRequest) -> list[SearchHit]: ...


class Generator(Protocol):
    async def grounded(self, request: GroundedCompletionRequest) -> ChatCompletionResponse: ...

    async def grounded_stream(
        self, request: GroundedCompletionRequest
    ) -> AsyncIterator[ChatCompletionChunk]: ...

    async def chat(self, request: ChatCompletionRequest) -> ChatCompletionResponse: ...

    async def chat_stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]: ...


class SafetyChecker(Protocol):
    async def check(self, text: str, direction: str) -> SafetyVerdict: ...
