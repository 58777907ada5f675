"""Small, real in-memory implementations of the orchestrator's ports."""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections import Counter
from collections.abc import AsyncIterator, Mapping

from rag_common.contracts import (
    ChatChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessage,
    ChunkChoice,
    ChunkDelta,
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
    Usage,
)
from rag_common.errors import NotFound, UpstreamUnavailable


class BagOfWordsEmbedder:
    """Hashes words into a small vector: texts sharing words end up close."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.calls: list[list[str]] = []

    async def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(texts)
        return [self._vector(text) for text in texts]

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self.size
        for word in text.lower().split():
            word = word.strip(".,?!")
            vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.size] += 1.0
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        return [x / norm for x in vector]


class MemoryRetriever:
    def __init__(self) -> None:
        self.collections: dict[str, dict[str, Point]] = {}

    async def ensure_collection(self, name: str, vector_size: int) -> CollectionInfo:
        points = self.collections.setdefault(name, {})
        return CollectionInfo(name=name, vector_size=vector_size, distance="cosine", points_count=len(points))

    async def upsert(self, collection: str, points: list[Point]) -> int:
        self.collections[collection].update({p.id: p for p in points})
        return len(points)

    async def search(self, collection: str, query: SearchRequest) -> list[SearchHit]:
        if collection not in self.collections:
            raise NotFound(f"Collection '{collection}' does not exist.")
        hits = [
            SearchHit(
                id=p.id,
                score=sum(a * b for a, b in zip(p.vector, query.vector, strict=True)),
                payload=p.payload,
            )
            for p in self.collections[collection].values()
            if all(self._field(p.payload, k) == v for k, v in (query.filter or {}).items())
        ]
        return sorted(hits, key=lambda h: h.score, reverse=True)[: query.top_k]

    async def delete(self, collection: str, request: DeleteRequest) -> int:
        points = self.collections.get(collection)
        if points is None:
            raise NotFound(f"Collection '{collection}' does not exist.")
        doomed = [
            pid
            for pid, p in points.items()
            if self._matches(p.payload, request.filter)
            and not self._matches_any(p.payload, request.exclude or {})
        ]
        for pid in doomed:
            del points[pid]
        return len(doomed)

    async def scroll(self, collection: str, request: ScrollRequest) -> list[StoredPoint]:
        points = self.collections.get(collection, {})
        return [
            StoredPoint(id=pid, payload=p.payload)
            for pid, p in points.items()
            if self._matches(p.payload, request.filter or {})
        ][: request.limit]

    async def document_counts(self, collection: str) -> list[DocumentCount]:
        counts = Counter(str(p.payload["document_id"]) for p in self.collections.get(collection, {}).values())
        return [DocumentCount(document_id=d, chunks=n) for d, n in sorted(counts.items())]

    @classmethod
    def _matches(cls, payload: dict[str, object], conditions: Mapping[str, object]) -> bool:
        return all(cls._equal_or_in(cls._field(payload, k), v) for k, v in conditions.items())

    @classmethod
    def _matches_any(cls, payload: dict[str, object], conditions: Mapping[str, object]) -> bool:
        return any(cls._equal_or_in(cls._field(payload, k), v) for k, v in conditions.items())

    @staticmethod
    def _equal_or_in(value: object, expected: object) -> bool:
        return value in expected if isinstance(expected, list) else value == expected

    @staticmethod
    def _field(payload: dict[str, object], dotted: str) -> object:
        value: object = payload
        for part in dotted.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value


class QuotingGenerator:
    """Answers with the first context passage, cited; streams it word by word."""

    model = "quoting-model"

    def __init__(self) -> None:
        self.requests: list[GroundedCompletionRequest] = []

    def _answer(self, request: GroundedCompletionRequest) -> str:
        return f"{request.contexts[0].text} [1]" if request.contexts else "No context."

    async def grounded(self, request: GroundedCompletionRequest) -> ChatCompletionResponse:
        self.requests.append(request)
        return ChatCompletionResponse(
            model=self.model,
            choices=[ChatChoice(message=ChatMessage(role="assistant", content=self._answer(request)))],
            usage=Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15),
        )

    async def grounded_stream(self, request: GroundedCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        self.requests.append(request)
        return self._stream(self._answer(request))

    async def chat(self, request: ChatCompletionRequest) -> ChatCompletionResponse:
        content = f"echo: {request.messages[-1].content}"
        return ChatCompletionResponse(
            model=self.model, choices=[ChatChoice(message=ChatMessage(role="assistant", content=content))]
        )

    async def chat_stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        return self._stream(f"echo: {request.messages[-1].content}")

    async def _stream(self, text: str) -> AsyncIterator[ChatCompletionChunk]:
        words = text.split(" ")
        for i, word in enumerate(words):
            last = i == len(words) - 1
            yield ChatCompletionChunk(
                id="chatcmpl-test",
                model=self.model,
                choices=[
                    ChunkChoice(
                        delta=ChunkDelta(content=word + ("" if last else " ")),
                        finish_reason="stop" if last else None,
                    )
                ],
                usage=Usage(prompt_tokens=10, completion_tokens=len(words), total_tokens=10 + len(words))
                if last
                else None,
            )


class KeywordSafety:
    """Blocks texts containing a banned word; redacts e-mail-looking words."""

    def __init__(self, banned: str = "forbidden", gate: asyncio.Event | None = None) -> None:
        self.banned = banned
        self.gate = gate
        self.checked: list[tuple[str, str]] = []

    async def screen(self, passages: list[str], tenant: str | None = None) -> list[int]:
        return [
            i for i, passage in enumerate(passages) if "ignore all previous instructions" in passage.lower()
        ]

    async def grounding(self, answer: str, passages: list[str]) -> Grounding:
        words = set(answer.lower().split())
        context = set(" ".join(passages).lower().split())
        score = len(words & context) / max(len(words), 1)
        return Grounding(score=score, grounded=score >= 0.5)

    async def check(self, text: str, direction: str, tenant: str | None = None) -> SafetyVerdict:
        if self.gate is not None:
            await asyncio.wait_for(self.gate.wait(), timeout=2)
        self.checked.append((direction, text))
        if self.banned in text:
            return SafetyVerdict(verdict="block", text=text, reasons=[f"'{self.banned}' is not allowed"])
        words = ["<EMAIL_ADDRESS>" if "@" in w else w for w in text.split(" ")]
        redacted = " ".join(words)
        return SafetyVerdict(verdict="redact" if redacted != text else "allow", text=redacted)


class UnreachableSafety(KeywordSafety):
    """The safety service is down: every call fails as the HTTP client reports it."""

    async def check(self, text: str, direction: str, tenant: str | None = None) -> SafetyVerdict:
        raise UpstreamUnavailable("safety")

    async def screen(self, passages: list[str], tenant: str | None = None) -> list[int]:
        raise UpstreamUnavailable("safety")

    async def grounding(self, answer: str, passages: list[str]) -> Grounding:
        raise UpstreamUnavailable("safety")
