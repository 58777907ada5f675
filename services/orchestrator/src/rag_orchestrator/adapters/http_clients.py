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
    CollectionReplace,
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
    RerankRequest,
    RerankResponse,
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
    WriteLock,
)
from rag_common.errors import UpstreamUnavailable
from rag_common.http import ServiceClient

from .. import safety_policy
from ..embedding_model import EmbeddingModel, vectors_made_by

STREAM_END = "[DONE]"


class EmbeddingClient:
    def __init__(self, client: ServiceClient, model: EmbeddingModel | None = None) -> None:
        self._client = client
        self.model = model or EmbeddingModel()

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return (await self.embed_with_model(texts))[1]

    async def embed_with_model(self, texts: list[str]) -> tuple[str, list[list[float]]]:
        response = await self.create(EmbeddingRequest(input=texts))
        ordered = sorted(response.data, key=lambda item: item.index)
        return vectors_made_by(response), [
            item.embedding for item in ordered if isinstance(item.embedding, list)
        ]

    async def create(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """The OpenAI-shaped call as a client sent it (the gateway's `/v1/embeddings`)."""
        response = await self._client.call(
            "POST", "/v1/embeddings", EmbeddingResponse, body=request, idempotent=True
        )
        self.model.observe(vectors_made_by(response))
        return response


class RerankClient:
    """The cross-encoder behind the embedding service's `/v1/rerank`."""

    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def rerank(self, query: str, documents: list[str], top_n: int) -> list[int]:
        request = RerankRequest(query=query, documents=documents, top_n=top_n)
        response = await self._client.call(
            "POST", "/v1/rerank", RerankResponse, body=request, idempotent=True
        )
        return [result.index for result in response.results]


class RetrievalClient:
    """Every collection, upsert and search declares the embedding model of its vectors (`model.last`)."""

    def __init__(self, client: ServiceClient, model: EmbeddingModel | None = None) -> None:
        self._client = client
        self._model = model or EmbeddingModel()

    async def ensure_collection(self, name: str, vector_size: int) -> CollectionInfo:
        return await self.create_collection(name, vector_size, self._model.last)

    async def create_collection(self, name: str, vector_size: int, model: str | None) -> CollectionInfo:
        spec = CollectionCreate(name=name, vector_size=vector_size, embedding_model=model)
        return await self._client.call("POST", "/v1/collections", CollectionInfo, body=spec, idempotent=True)

    async def get_collection(self, name: str) -> CollectionInfo:
        return await self._client.call("GET", f"/v1/collections/{name}", CollectionInfo, idempotent=True)

    async def upsert(self, collection: str, points: list[Point]) -> int:
        return await self.upsert_model(collection, points, self._model.last)

    async def upsert_model(self, collection: str, points: list[Point], model: str | None) -> int:
        response = await self._client.call(
            "PUT",
            f"/v1/collections/{collection}/points",
            UpsertResponse,
            body=UpsertRequest(points=points, embedding_model=model),
            idempotent=True,
        )
        return response.upserted

    async def replace(self, name: str, source: str) -> CollectionInfo:
        body = CollectionReplace(source=source)
        path = f"/v1/collections/{name}/replace"
        return await self._client.call("POST", path, CollectionInfo, body=body, idempotent=True)

    async def set_write_lock(self, name: str, owner: str | None) -> CollectionInfo:
        path = f"/v1/collections/{name}/write-lock"
        if owner is None:
            return await self._client.call("DELETE", path, CollectionInfo, idempotent=True)
        return await self._client.call(
            "PUT", path, CollectionInfo, body=WriteLock(owner=owner), idempotent=True
        )

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
        return (await self.scroll_page(collection, request)).points

    async def scroll_page(self, collection: str, request: ScrollRequest) -> ScrollResponse:
        path = f"/v1/collections/{collection}/points/scroll"
        return await self._client.call("POST", path, ScrollResponse, body=request, idempotent=True)

    async def document_counts(self, collection: str) -> list[DocumentCount]:
        path = f"/v1/collections/{collection}/documents"
        response = await self._client.call("GET", path, DocumentCounts, idempotent=True)
        return response.documents

    async def search(self, collection: str, query: SearchRequest) -> list[SearchHit]:
        if query.embedding_model is None and query.vector is not None:
            query = query.model_copy(update={"embedding_model": self._model.last})
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
    """Each check names the request's safety policy (its API key's, `safety_policy.current()`), if any."""

    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def check(self, text: str, direction: str, tenant: str | None = None) -> SafetyVerdict:
        request = SafetyCheckRequest.model_validate(
            {"text": text, "direction": direction, "tenant": tenant, "policy": safety_policy.current()}
        )
        return await self._client.call("POST", "/v1/check", SafetyVerdict, body=request, idempotent=True)

    async def screen(self, passages: list[str], tenant: str | None = None) -> list[int]:
        request = PassageScreeningRequest(passages=passages, tenant=tenant, policy=safety_policy.current())
        response = await self._client.call(
            "POST", "/v1/check/passages", PassageScreening, body=request, idempotent=True
        )
        return response.blocked

    async def grounding(self, answer: str, passages: list[str]) -> Grounding:
        request = GroundingRequest(answer=answer, passages=passages)
        return await self._client.call("POST", "/v1/grounding", Grounding, body=request, idempotent=True)
