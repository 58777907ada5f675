from __future__ import annotations

import base64
import sys
from array import array

from opentelemetry import trace
from starlette.concurrency import run_in_threadpool

from rag_common.contracts import (
    EmbeddingData,
    EmbeddingRequest,
    EmbeddingResponse,
    RerankRequest,
    RerankResponse,
    RerankResult,
    Usage,
)
from rag_common.errors import NotFound, UnprocessableContent
from rag_common.model_slots import MODEL_VERSION_ATTRIBUTE

from .batching import Embedded
from .cache import embed_cached
from .errors import RerankingNotConfigured
from .ports import Reranker, VectorCache
from .swaps import EmbedderSlot, ServedEmbedder


def _base64(vector: list[float]) -> str:
    """Little-endian float32, as OpenAI's API encodes it."""
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


def _check_inputs(texts: list[str], max_chars: int, *, field: str = "input") -> None:
    for index, text in enumerate(texts):
        if len(text) > max_chars:
            raise UnprocessableContent(
                f"{field}[{index}] has {len(text)} characters; the limit is {max_chars}. Split it into chunks."
            )


def _check_model(requested: str | None, served: str) -> None:
    if requested not in (None, served):
        raise NotFound(f"Model '{requested}' is not served here; this service serves '{served}'.")


async def embed(
    request: EmbeddingRequest,
    *,
    slot: EmbedderSlot,
    cache: VectorCache | None,
    normalize: bool,
    max_chars: int,
) -> EmbeddingResponse:
    """All texts of one request are embedded by the version current when it arrived, whatever swaps."""
    _check_model(request.model, slot.name)
    texts = request.texts()
    _check_inputs(texts, max_chars)
    async with slot.acquire() as version:
        embedded = await _embed(
            texts, version.model, cache, model=slot.name, version=version.version, normalize=normalize
        )
    trace.get_current_span().set_attribute(MODEL_VERSION_ATTRIBUTE, version.version)
    encode = _base64 if request.encoding_format == "base64" else list
    return EmbeddingResponse(
        data=[EmbeddingData(index=i, embedding=encode(vector)) for i, vector in enumerate(embedded.vectors)],
        model=slot.name,
        model_version=version.version,
        usage=Usage(prompt_tokens=embedded.tokens, total_tokens=embedded.tokens),
    )


async def _embed(
    texts: list[str],
    served: ServedEmbedder,
    cache: VectorCache | None,
    *,
    model: str,
    version: str,
    normalize: bool,
) -> Embedded:
    if cache is None:
        return await served.batcher.embed(texts)
    return await embed_cached(
        texts, batcher=served.batcher, cache=cache, model=model, version=version, normalize=normalize
    )


async def rerank(
    request: RerankRequest, *, reranker: Reranker | None, max_documents: int, max_chars: int
) -> RerankResponse:
    if reranker is None:
        raise RerankingNotConfigured()
    _check_model(request.model, reranker.model_name)
    if len(request.documents) > max_documents:
        raise UnprocessableContent(
            f"{len(request.documents)} documents; the limit is {max_documents} per request. Send fewer."
        )
    _check_inputs([request.query], max_chars, field="query")
    _check_inputs(request.documents, max_chars, field="documents")
    scores = await run_in_threadpool(reranker.score, request.query, request.documents)
    ranked = sorted(enumerate(scores), key=lambda pair: pair[1], reverse=True)[: request.top_n]
    return RerankResponse(
        model=reranker.model_name, results=[RerankResult(index=i, score=score) for i, score in ranked]
    )
