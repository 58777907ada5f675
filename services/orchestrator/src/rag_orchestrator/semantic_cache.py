"""The semantic answer cache: a question close enough to one answered before reuses its answer.

Redis here has no vector search (no RediSearch module), so each scope keeps a capped list of
(answer key, question vector) entries. A scope is every setting of the exact answer key except the
question (`cache.semantic_scope`): tenant-namespaced collection, collection version, top_k, filter,
mode, model, prompt version, max_tokens, temperature. A lookup fetches the scope's list in one round
trip and scores it with numpy. The answer itself stays under its exact key, so it expires and is
invalidated by the collection version exactly like an exact hit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag_common import metrics
from rag_common.contracts import RagAnswer

from . import timing
from .pipeline import Pipeline
from .ports import Cache

CACHE_NAME = "semantic_answer"
STAGE = "semantic_cache"
STORED = np.dtype(np.float16)


@dataclass(frozen=True, slots=True)
class Match:
    key: str
    similarity: float


def _unit(vector: Sequence[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm else array


def encode(vector: Sequence[float]) -> bytes:
    """Unit length float16: half the bytes to fetch, cosines within about 1e-3 of float32."""
    return _unit(vector).astype(STORED).tobytes()


def best_match(entries: Sequence[tuple[str, bytes]], vector: Sequence[float]) -> Match | None:
    """The most similar entry; entries of another dimension (an earlier embedding model) are skipped."""
    query = _unit(vector)
    size = query.size * STORED.itemsize
    usable = [(key, raw) for key, raw in entries if len(raw) == size]
    if not usable:
        return None
    matrix = np.frombuffer(b"".join(raw for _, raw in usable), dtype=STORED).reshape(len(usable), -1)
    scores = matrix.astype(np.float32) @ query
    best = int(np.argmax(scores))
    return Match(usable[best][0], float(scores[best]))


async def find(cache: Cache, scope: str, vector: Sequence[float], *, threshold: float) -> RagAnswer | None:
    match = best_match(await cache.semantic_entries(scope), vector)
    raw = await cache.get(match.key) if match is not None and match.similarity >= threshold else None
    metrics.record_cache_lookup(CACHE_NAME, hit=raw is not None)
    if raw is None or match is None:
        return None
    served = {"cached": True, "cache": "semantic", "cache_similarity": round(match.similarity, 4)}
    return RagAnswer.model_validate_json(raw).model_copy(update=served)


async def lookup(pipeline: Pipeline, scope: str, vector: Sequence[float]) -> RagAnswer | None:
    """None while the semantic cache is off; the caller has already checked the new question's input."""
    settings = pipeline.settings
    if not settings.semantic_cache_enabled:
        return None
    async with timing.stage(STAGE):
        return await find(pipeline.cache, scope, vector, threshold=settings.semantic_cache_threshold)


async def remember(pipeline: Pipeline, scope: str, key: str, vector: Sequence[float]) -> None:
    """Indexes a question whose answer was just stored under `key` (timed with that write)."""
    settings = pipeline.settings
    if settings.semantic_cache_enabled:
        await pipeline.cache.add_semantic_entry(
            scope, key, encode(vector), max_entries=settings.semantic_cache_max_entries
        )
