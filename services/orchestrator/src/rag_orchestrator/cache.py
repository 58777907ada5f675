"""Cache keys, and the no-op cache used when caching is off.

Every key of a collection's answers and searches contains the collection's version, which each
ingestion or deletion bumps: after a change no cache layer can return anything from before it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

from rag_common import metrics
from rag_common.contracts import ChatCompletionResponse, RagAnswer, RagQuery, SearchRequest, SearchResponse

from .ports import Cache


def normalise(question: str) -> str:
    return " ".join(question.lower().split())


def _digest(material: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def answer_key(query: RagQuery, *, version: int, model: str, prompt_version: str, mode: str) -> str:
    material = {
        "collection": query.collection,
        "version": version,
        "question": normalise(query.question),
        "top_k": query.top_k,
        "filter": query.filter,
        "mode": mode,
        "model": model,
        "prompt": prompt_version,
        "max_tokens": query.max_tokens,
        "temperature": query.temperature,
    }
    return "answer:" + _digest(material)


def search_key(collection: str, version: int, request: SearchRequest) -> str:
    material = {"collection": collection, "version": version} | request.model_dump(exclude={"vector"})
    if request.vector is not None:
        material["vector"] = hashlib.sha256(json.dumps(request.vector).encode()).hexdigest()
    return "search:" + _digest(material)


def vector_key(namespace: str, text: str) -> str:
    return f"vector:{namespace}:" + hashlib.sha256(text.encode()).hexdigest()


class NoCache:
    """Caching switched off: always a miss, writes dropped."""

    async def collection_version(self, collection: str) -> int | None:
        return None

    async def bump(self, collection: str) -> None:
        return None

    async def get(self, key: str) -> bytes | None:
        return None

    async def set(self, key: str, value: bytes) -> None:
        return None

    async def get_vectors(self, keys: Sequence[str]) -> list[list[float] | None]:
        return [None] * len(keys)

    async def set_vectors(self, items: dict[str, list[float]]) -> None:
        return None


DEFAULT_MODEL = "default"


def requested_model(configured: str | None) -> str:
    return configured or DEFAULT_MODEL


async def cached_answer(cache: Cache, key: str) -> RagAnswer | None:
    raw = await cache.get(key)
    metrics.record_cache_lookup("answer", hit=raw is not None)
    return RagAnswer.model_validate_json(raw).model_copy(update={"cached": True}) if raw else None


def store_key(key_for_model: Callable[[str], str], requested: str, completion: ChatCompletionResponse) -> str:
    """A fallback's answer goes under the fallback model's key, never the requested model's."""
    extra = completion.model_extra or {}
    return key_for_model(completion.model) if extra.get("fallback_from") else key_for_model(requested)


async def cached_search(cache: Cache, key: str) -> SearchResponse | None:
    raw = await cache.get(key)
    metrics.record_cache_lookup("search", hit=raw is not None)
    return SearchResponse.model_validate_json(raw) if raw else None
