from __future__ import annotations

from rag_common.errors import ServiceError


class RerankingNotConfigured(ServiceError):
    status_code = 501
    title = "Not Implemented"
    type_slug = "rerank-not-configured"

    def __init__(self) -> None:
        super().__init__(
            "Reranking is not configured on this embedding service: set EMBEDDING_RERANK_MODEL_PATH "
            "to a local cross-encoder folder."
        )
