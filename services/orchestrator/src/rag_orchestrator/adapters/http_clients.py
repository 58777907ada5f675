"""The downstream services, each reached over REST through the shared `ServiceClient`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from httpx_sse import ServerSentEvent

from rag_common.contracts import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CollectionCreate,
    CollectionInfo,
    CollectionList,
    DeleteRequest,
    DeleteResponse,
    DocumentCount,
    DocumentCounts,
    EmbeddingRequest,
    EmbeddingResponse,
    GroundedCompletionRequest,
    Grounding,
    GroundingRequest,
    ModelList,
    PassageScreening,
    PassageScreeningRequest,
    Point,
    SafetyCheckRequest,
    SafetyVerdict,
    ScrollRequest,
    ScrollResponse,
    SearchHit,
    SearchRequest,
    SearchResponse,
    StoredPoint,
    UpsertRequest,
    UpsertResponse,
)
from rag_common.errors import UpstreamUnavailable
from rag_common.http import ServiceClient

STREAM_END = "[DONE]"


class EmbeddingClient:
    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def embed(self, texts: list[str]) -> list[list[float]]:
        response = await self.create(EmbeddingRequest(input=texts))
        ordered = sorted(response.data, key=lambda item: item.index)
        return [item.embedding for item in ordered if isinstance(item.embedding, list)]

    async def create(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """The OpenAI-shaped call as a client sent it (the gateway's `/v1/embeddings`)."""
        return await self._client.call(
            "POST", "/v1/embeddings", EmbeddingResponse, body=request, idempotent=True
        )


class RetrievalClient:
    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def ensure_collection(self, name: str, vector_size: int) -> CollectionInfo:
        spec = CollectionCreate(name=name, vector_size=vector_size)
        return await self._client.call("POST", "/v1/collections", CollectionInfo, body=spec, idempotent=True)

    async def upsert(self, collection: str, points: list[Point]) -> int:
        response = await self._client.call(
            "PUT",
            f"/v1/collections/{collection}/points",
            UpsertResponse,
            body=UpsertRequest(points=points),
            idempotent=True,
        )
        return response.upserted

    async def list_collections(self) -> list[CollectionInfo]:
        response = await self._client.call("GET", "/v1/collections", CollectionList, idempotent=True)
        return response.collections

    async def delete_collection(self, name: str) -> None:
        await self._client.call_raw("DELETE", f"/v1/collections/{name}", idempotent=True)

    async def delete(self, collection: str, request: DeleteRequest) -> int:
        path = f"/v1/collections/{collection}/points/delete"
        response = await self._client.call("POST", path, DeleteResponse, body=request, idempotent=True)
        return response.deleted

    async def scroll(self, collection: str, request: ScrollRequest) -> list[StoredPoint]:
        path = f"/v1/collections/{collection}/points/scroll"
        response = await self._client.call("POST", path, ScrollResponse, body=request, idempotent=True)
        return response.points

    async def document_counts(self, collection: str) -> list[DocumentCount]:
        path = f"/v1/collections/{collection}/documents"
        response = await self._client.call("GET", path, DocumentCounts, idempotent=True)
        return response.documents

    async def search(self, collection: str, query: SearchRequest) -> list[SearchHit]:
        response = await self._client.call(
            "POST", f"/v1/collections/{collection}/search", SearchResponse, body=query, idempotent=True
        )
        return response.hits


class LlmClient:
    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def models(self) -> ModelList:
        return await self._client.call("GET", "/v1/models", ModelList, idempotent=True)

    async def grounded(self, request: GroundedCompletionRequest) -> ChatCompletionResponse:
        body = request.model_copy(update={"stream": False})
        return await self._client.call("POST", "/v1/grounded/completions", ChatCompletionResponse, body=body)

    async def grounded_stream(self, request: GroundedCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        body = request.model_copy(update={"stream": True})
        return self._chunks(await self._client.stream_events("POST", "/v1/grounded/completions", body=body))

    async def chat(self, request: ChatCompletionRequest) -> ChatCompletionResponse:
        body = request.model_copy(update={"stream": False})
        return await self._client.call("POST", "/v1/chat/completions", ChatCompletionResponse, body=body)

    async def chat_stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        body = request.model_copy(update={"stream": True})
        return self._chunks(await self._client.stream_events("POST", "/v1/chat/completions", body=body))

    @staticmethod
    async def _chunks(events: AsyncIterator[ServerSentEvent]) -> AsyncIterator[ChatCompletionChunk]:
        """OpenAI-style chunks until `[DONE]`; an `{"error": ...}` event mid-stream ends it with 503."""
        async for event in events:
            if event.data.strip() == STREAM_END:
                return
            if not event.data:
                continue
            payload = json.loads(event.data)
            if "error" in payload:
                message = str(payload["error"].get("message") or "generation failed mid-stream")
                raise UpstreamUnavailable("llm", f"The llm service failed while streaming: {message}")
            yield ChatCompletionChunk.model_validate(payload)


class SafetyClient:
    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def check(self, text: str, direction: str, tenant: str | None = None) -> SafetyVerdict:
        request = SafetyCheckRequest.model_validate({"text": text, "direction": direction, "tenant": tenant})
        return await self._client.call("POST", "/v1/check", SafetyVerdict, body=request, idempotent=True)

    async def screen(self, passages: list[str], tenant: str | None = None) -> list[int]:
        request = PassageScreeningRequest(passages=passages, tenant=tenant)
        response = await self._client.call(
            "POST", "/v1/check/passages", PassageScreening, body=request, idempotent=True
        )
        return response.blocked

    async def grounding(self, answer: str, passages: list[str]) -> Grounding:
        request = GroundingRequest(answer=answer, passages=passages)
        return await self._client.call("POST", "/v1/grounding", Grounding, body=request, idempotent=True)
