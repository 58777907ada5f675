from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from rag_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RETRIEVAL_", extra="ignore")

    max_body_bytes: int = Field(
        default=64 * 1_048_576, gt=0, description="Upserts carry vectors: larger limit."
    )
    qdrant_url: str | None = Field(
        default=None, description="A Qdrant server (e.g. http://qdrant:6333); unset = the embedded `engine`."
    )
    engine: Literal["edge", "local"] = Field(
        default="edge",
        description="Embedded engine when no server is set: Qdrant Edge (in-process Rust engine) or "
        "qdrant-client local mode (numpy brute force, for small collections).",
    )
    qdrant_api_key: SecretStr | None = None
    qdrant_path: str = Field(
        default="data/qdrant", description="Data folder of the embedded engine (edge: its `edge/` subfolder)."
    )
    qdrant_timeout_s: int = Field(default=10, gt=0)
    fusion: Literal["dbsf", "rrf"] = Field(
        default="dbsf",
        description="How hybrid search fuses dense and BM25: distribution-based score fusion or reciprocal rank.",
    )
    hybrid_candidates: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Candidates each of dense and BM25 contribute before fusion.",
    )
    bm25_average_terms: float = Field(
        default=100.0, gt=0, description="BM25 length normalisation: the term count of a typical chunk."
    )
