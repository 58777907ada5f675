from __future__ import annotations

from fastapi import APIRouter, Response

from rag_common.contracts import (
    EmbeddingRequest,
    EmbeddingResponse,
    ModelCard,
    ModelList,
    RerankRequest,
    RerankResponse,
)
from rag_common.model_slots import MODEL_VERSION_HEADER, ModelSlotInfo, ModelSlotList
from rag_common.routing import LeanRoute

from . import service as embedding_service
from . import swaps as swap_service
from .deps import CacheDep, FactoryDep, RerankerDep, SettingsDep, SlotDep

# LeanRoute: a valid `/v1/embeddings` request skips FastAPI's generic handling (rag_common.routing).
router = APIRouter(prefix="/v1", tags=["embeddings"], route_class=LeanRoute)
admin_router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post(
    "/embeddings", responses={200: {"model": EmbeddingResponse, "description": "Successful Response"}}
)
async def create_embeddings(
    body: EmbeddingRequest, slot: SlotDep, cache: CacheDep, settings: SettingsDep
) -> Response:
    """`X-Model-Version` (and `model_version`) name the model version that made the vectors."""
    answer = await embedding_service.embed(
        body, slot=slot, cache=cache, normalize=settings.normalize, max_chars=settings.max_input_chars
    )
    return Response(
        answer.model_dump_json(),
        media_type="application/json",
        headers={MODEL_VERSION_HEADER: answer.model_version or ""},
    )


@router.post(
    "/rerank",
    response_model=RerankResponse,
    tags=["rerank"],
    responses={501: {"description": "No reranker is configured (EMBEDDING_RERANK_MODEL_PATH unset)."}},
)
async def rerank(body: RerankRequest, reranker: RerankerDep, settings: SettingsDep) -> RerankResponse:
    return await embedding_service.rerank(
        body,
        reranker=reranker,
        max_documents=settings.rerank_max_documents,
        max_chars=settings.max_input_chars,
    )


@router.get("/models", response_model=ModelList)
async def list_models(slot: SlotDep, reranker: RerankerDep) -> ModelList:
    served = [slot.name] + ([reranker.model_name] if reranker else [])
    return ModelList(data=[ModelCard(id=name) for name in served])


@admin_router.get("/models", response_model=ModelSlotList)
async def list_model_versions(slot: SlotDep) -> ModelSlotList:
    """The embedding model's current version, and any version loading or draining, with requests in flight."""
    return ModelSlotList(models=[slot.describe()])


@admin_router.post(
    "/models/{name}/load",
    response_model=ModelSlotInfo,
    responses={
        409: {"description": "A swap is already running, or the version already serves."},
        422: {"description": "The new version failed to load or its check; the old one keeps serving."},
    },
)
async def load_model_version(
    name: str, body: swap_service.LoadModelRequest, slot: SlotDep, settings: SettingsDep, factory: FactoryDep
) -> ModelSlotInfo:
    """Load a new version beside the current one, warm and check it, then switch new requests to it."""
    return await swap_service.load_version(name, body, slot=slot, settings=settings, factory=factory)
