from __future__ import annotations

import base64
import sys
from array import array

from rag_common.contracts import EmbeddingData, EmbeddingRequest, EmbeddingResponse, Usage
from rag_common.errors import NotFound, UnprocessableContent

from .batching import DynamicBatcher
from .ports import Embedder


def _base64(vector: list[float]) -> str:
    """Little-endian float32, as OpenAI's API encodes it."""
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


def _check_inputs(texts: list[str], max_chars: int) -> None:
    for index, text in enumerate(texts):
        if len(text) > max_chars:
            raise UnprocessableContent(
                f"input[{index}] has {len(text)} characters; the limit is {max_chars}. Split it into chunks."
            )


async def embed(
    request: EmbeddingRequest, *, embedder: Embedder, batcher: DynamicBatcher, max_chars: int
) -> EmbeddingResponse:
    if request.model not in (None, embedder.model_name):
        raise NotFound(
            f"Model '{request.model}' is not served here; this service serves '{embedder.model_name}'."
        )
    texts = request.texts()
    _check_inputs(texts, max_chars)
    embedded = await batcher.embed(texts)
    encode = _base64 if request.encoding_format == "base64" else list
    return EmbeddingResponse(
        data=[EmbeddingData(index=i, embedding=encode(vector)) for i, vector in enumerate(embedded.vectors)],
        model=embedder.model_name,
        usage=Usage(prompt_tokens=embedded.tokens, total_tokens=embedded.tokens),
    )
