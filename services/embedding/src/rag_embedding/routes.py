from __future__ import annotations

from fastapi import APIRouter

from rag_common.contracts import EmbeddingRequest, EmbeddingResponse, ModelCard, ModelList

from . import service as embedding_service
from .deps import BatcherDep, EmbedderDep, SettingsDep

router = APIRouter(prefix="/v1", tags=["embeddings"])


@router.post("/embeddings", response_model=EmbeddingResponse)
async def create_embeddings(
    body: EmbeddingRequest, embedder: EmbedderDep, batcher: BatcherDep, settings: SettingsDep
) -> EmbeddingResponse:
    return await embedding_service.embed(
        body, embedder=embedder, batcher=batcher, max_chars=settings.max_input_chars
    )


@router.get("/models", response_model=ModelList)
async def list_models(embedder: EmbedderDep) -> ModelList:
    return ModelList(data=[ModelCard(id=embedder.model_name)])
