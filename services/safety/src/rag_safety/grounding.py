"""Grounding score: how closely each sentence of an answer matches some retrieved passage.

Each answer sentence is embedded with the passages in one batch; its score is the highest cosine
similarity to any passage, and the answer's score is the mean over its sentences. Citation markers
(`[1]`) are removed first. Similarity is topical, not logical: a sentence that contradicts a passage
in the same words still scores high, so this catches answers about something else, not subtle errors.
"""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool

from rag_common.errors import PayloadTooLarge, ServiceUnavailable

from .ports import Embedder
from .schemas import GroundingRequest, GroundingResponse, SentenceScore

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_CITATION = re.compile(r"\s*\[\d+\]")


def split_sentences(text: str) -> list[str]:
    sentences = (_CITATION.sub("", s).strip() for s in _SENTENCE_END.split(text))
    return [s for s in sentences if re.search(r"\w", s)]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def score(
    request: GroundingRequest, *, embedder: Embedder | None, threshold: float, max_chars: int
) -> GroundingResponse:
    if embedder is None:
        raise ServiceUnavailable("Grounding is disabled (SAFETY_GROUNDING_ENABLED=false).")
    total = len(request.answer) + sum(len(p) for p in request.passages)
    if total > max_chars:
        raise PayloadTooLarge(
            f"Answer and passages have {total} characters; grounding accepts at most {max_chars}."
        )
    threshold = request.threshold if request.threshold is not None else threshold
    sentences = split_sentences(request.answer)
    if not sentences:
        return GroundingResponse(score=0.0, grounded=False, threshold=threshold, sentences=[])
    vectors = await run_in_threadpool(embedder.embed, [*sentences, *request.passages])
    passages = vectors[len(sentences) :]
    scored: list[SentenceScore] = []
    for text, vector in zip(sentences, vectors, strict=False):
        similarities = [_dot(vector, p) for p in passages]
        best = max(range(len(passages)), key=similarities.__getitem__)
        scored.append(SentenceScore(text=text, score=round(similarities[best], 4), passage=best))
    mean = round(sum(s.score for s in scored) / len(scored), 4)
    return GroundingResponse(score=mean, grounded=mean >= threshold, threshold=threshold, sentences=scored)
