from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from rag_common.contracts import SearchMode
from rag_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORCHESTRATOR_", extra="ignore")

    max_body_bytes: int = Field(default=10 * 1_048_576, gt=0)
    embedding_url: str = "http://127.0.0.1:8002"
    retrieval_url: str = "http://127.0.0.1:8003"
    llm_url: str = "http://127.0.0.1:8004"
    safety_url: str = "http://127.0.0.1:8005"
    llm_timeout_s: float = Field(default=120.0, gt=0, description="Generation is slow on a CPU.")
    retrieval_mode: SearchMode = Field(
        default="hybrid", description="dense, sparse (BM25) or hybrid (both, reciprocal rank fusion)."
    )
    llm_model: str | None = Field(
        default=None, description="The model asked of the llm service; unset: the llm service's default."
    )
    prompt_version: str = Field(
        default="rag_v1", description="The llm service's prompt template for answers."
    )
    redis_url: str | None = Field(
        default="redis://127.0.0.1:6379/0", description="Redis for the caches; unset turns caching off."
    )
    redis_timeout_s: float = Field(
        default=0.25, gt=0, description="Per Redis command; past it the cache is bypassed."
    )
    cache_enabled: bool = Field(
        default=True, description="Exact-answer, search and embedding caches in Redis."
    )
    cache_ttl_s: int = Field(
        default=86_400, ge=1, description="How long a cached answer, search or vector lives."
    )
    job_batch_documents: int = Field(default=32, ge=1, le=1000, description="Documents per step of a job.")
    job_retry_backoff_s: list[float] = Field(
        default=[0.5, 1, 2, 4, 8, 15, 30, 30, 30],
        description="Pauses between retries of a job step while a service is unavailable; then the job fails.",
    )
    job_concurrency: int = Field(default=1, ge=1, le=16, description="Jobs running at once per orchestrator.")
    job_ttl_s: int = Field(default=7 * 86_400, ge=60, description="How long a finished job's status is kept.")
    safety_enabled: bool = Field(default=True, description="Run input and output checks on every query.")
    safety_fail_open: bool = Field(
        default=False, description="Safety service down: answer unchecked (true) or 503 naming it (false)."
    )
    stream_guard: bool = Field(
        default=True,
        description="Check streamed answers a sentence at a time before release; false: once, after the stream.",
    )
    stream_guard_max_chars: int = Field(
        default=240,
        ge=20,
        le=4000,
        description="Streamed answers are held back a sentence at a time (at most this many characters), "
        "checked, then released.",
    )
    screen_passages: bool = Field(
        default=True, description="Drop retrieved passages the safety service finds an injection in."
    )
    grounding_enabled: bool = Field(
        default=True, description="Score how well each answer is supported by its citations."
    )
    chunk_size: int = Field(default=800, ge=50, description="Characters per chunk.")
    chunk_overlap: int = Field(default=120, ge=0, description="Characters shared by neighbouring chunks.")
    embed_batch_size: int = Field(default=64, ge=1, le=2048)
    upsert_batch_size: int = Field(default=256, ge=1, le=10_000)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        return self
