from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from rag_common.contracts import EmbeddingData, EmbeddingRequest, EmbeddingResponse, Usage
from rag_common.errors import NotFound

from .ports import Embedder


async def embed(request: EmbeddingRequest, *, embedder: Embedder) -> EmbeddingResponse:
    if request.model not in (None, embedder.model_name):
        raise NotFound(
            f"Model '{request.model}' is not served here; this service serves '{embedder.model_name}'."
        )
    texts = request.texts()
    vectors = await run_in_threadpool(embedder.embed, texts)
    tokens = await run_in_threadpool(embedder.count_tokens, texts)
    return EmbeddingResponse(
        data=[EmbeddingData(index=i, embedding=vector) for i, vector in enumerate(vectors)],
        model=embedder.model_name,
        usage=Usage(prompt_tokens=tokens, total_tokens=tokens),
    )
