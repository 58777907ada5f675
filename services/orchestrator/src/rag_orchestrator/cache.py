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


def _answer_settings(
    query: RagQuery, *, version: int, model: str, prompt_version: str, mode: str
) -> dict[str, object]:
    """Everything an answer depends on except the question."""
    return {
        "collection": query.collection,
        "version": version,
        "top_k": query.top_k,
        "filter": query.filter,
        "mode": mode,
        "model": model,
        "prompt": prompt_version,
        "max_tokens": query.max_tokens,
        "temperature": query.temperature,
    }


def answer_key(query: RagQuery, *, version: int, model: str, prompt_version: str, mode: str) -> str:
    material = _answer_settings(query, version=version, model=model, prompt_version=prompt_version, mode=mode)
    return "answer:" + _digest(material | {"question": normalise(query.question)})


def semantic_scope(query: RagQuery, *, version: int, model: str, prompt_version: str, mode: str) -> str:
    """The questions whose answers a similar question may reuse: those of the exact key's settings."""
    material = _answer_settings(query, version=version, model=model, prompt_version=prompt_version, mode=mode)
    return "semantic:" + _digest(material)


def search_key(collection: str, version: int, request: SearchRequest) -> str:
    material = {"collection": collection, "version": version} | request.model_dump(exclude={"vector"})
    if request.vector is not None:
        material["vector"] = hashlib.sha256(json.dumps(request.vector).encode()).hexdigest()
    return "search:" + _digest(material)


def vector_key(namespace: str, text: str) -> str:
    return f"vector:{namespace}:" + hashlib.sha256(text.encode()).hexdigest()


class NoCache:
    """Caching switched off: always a miss, writes dropped."""

    async def versioned_get(
        self, collection: str, key_for: Callable[[int], str]
    ) -> tuple[int | None, bytes | None]:
        return None, None

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

    async def semantic_entries(self, scope: str) -> list[tuple[str, bytes]]:
        return []

    async def add_semantic_entry(self, scope: str, key: str, vector: bytes, *, max_entries: int) -> None:
        return None


DEFAULT_MODEL = "default"


def requested_model(configured: str | None) -> str:
    return configured or DEFAULT_MODEL


async def cached_answer(cache: Cache, key: str) -> RagAnswer | None:
    return answer_from(await cache.get(key))


def answer_from(raw: bytes | None) -> RagAnswer | None:
    metrics.record_cache_lookup("answer", hit=raw is not None)
    return (
        RagAnswer.model_validate_json(raw).model_copy(update={"cached": True, "cache": "exact"})
        if raw
        else None
    )


def stored_model(requested: str, completion: ChatCompletionResponse | None) -> str:
    """A fallback's answer is cached under the fallback model, never the requested model."""
    if completion is not None and (completion.model_extra or {}).get("fallback_from"):
        return completion.model
    return requested


async def cached_search(cache: Cache, key: str) -> SearchResponse | None:
    raw = await cache.get(key)
    metrics.record_cache_lookup("search", hit=raw is not None)
    return SearchResponse.model_validate_json(raw) if raw else None
