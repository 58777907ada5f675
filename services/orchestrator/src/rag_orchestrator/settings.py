from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from rag_common.contracts import SearchMode
from rag_common.settings import REQUEST_HEAVY_GC_THRESHOLD, ServiceSettings, gc_threshold_field

from .experiments import Experiment


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORCHESTRATOR_", extra="ignore")
    gc_young_threshold: int = gc_threshold_field(REQUEST_HEAVY_GC_THRESHOLD)

    max_body_bytes: int = Field(default=10 * 1_048_576, gt=0)
    embedding_url: str = "http://127.0.0.1:8002"
    retrieval_url: str = "http://127.0.0.1:8003"
    llm_url: str = "http://127.0.0.1:8004"
    safety_url: str = "http://127.0.0.1:8005"
    llm_timeout_s: float = Field(
        default=120.0, gt=0, description="Generation (and condensing a follow-up); slow on a CPU."
    )
    embed_timeout_s: float = Field(default=10.0, gt=0, description="Embedding a query; past it 503.")
    retrieval_timeout_s: float = Field(default=10.0, gt=0, description="Searching a collection; past it 503.")
    safety_timeout_s: float = Field(
        default=5.0, gt=0, description="Each safety call of a query; past it the fail-open policy decides."
    )
    memory_turns: int = Field(
        default=6, ge=0, le=50, description="Turns kept per conversation (`session_id`); 0 turns memory off."
    )
    memory_ttl_s: int = Field(
        default=3_600, ge=60, description="A conversation is forgotten this long after its last turn."
    )
    retrieval_mode: SearchMode = Field(
        default="hybrid", description="dense, sparse (BM25) or hybrid (both, reciprocal rank fusion)."
    )
    rerank_enabled: bool = Field(
        default=False,
        description="Reorder retrieved passages with the embedding service's cross-encoder (/v1/rerank).",
    )
    rerank_candidates: int = Field(
        default=20, ge=1, le=100, description="Passages retrieved for the reranker to choose top_k from."
    )
    llm_model: str | None = Field(
        default=None, description="The model asked of the llm service; unset: the llm service's default."
    )
    prompt_version: str = Field(
        default="rag_v1", description="The llm service's prompt template for answers."
    )
    allowed_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Models a request may name in `model` (comma-separated or JSON list); another gets 422. "
        "Empty: a named model goes to the llm service as is.",
    )
    model_tiers: dict[str, str] = Field(
        default_factory=dict,
        description='JSON: cost/quality tier -> model, e.g. {"fast": "small", "quality": "large"}; '
        "a request's `tier` picks one.",
    )
    tenant_models: dict[str, str] = Field(
        default_factory=dict, description="JSON: tenant -> the model its requests use by default."
    )
    experiments: list[Experiment] = Field(
        default_factory=list,
        description="JSON list of A/B experiments: {name, variants: [{name, weight, model, prompt_version}], "
        "sticky: user|session, tenants}.",
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
    semantic_cache_enabled: bool = Field(
        default=False,
        description="Reuse the cached answer of a similar question (same tenant, collection version and settings).",
    )
    semantic_cache_threshold: float = Field(
        default=0.93,
        gt=0,
        le=1,
        description="Cosine similarity of the question embeddings from which a cached answer is reused.",
    )
    semantic_cache_max_entries: int = Field(
        default=1_000, ge=1, le=100_000, description="Questions remembered per scope, newest kept."
    )
    semantic_cache_mirror_mb: int = Field(
        default=64,
        ge=1,
        description="Memory for the semantic cache scopes each replica mirrors in process (least recently "
        "used dropped first; a scope bigger than this is fetched whole on every lookup).",
    )
    job_batch_documents: int = Field(default=32, ge=1, le=1000, description="Documents per step of a job.")
    job_retry_backoff_s: list[float] = Field(
        default=[0.5, 1, 2, 4, 8, 15, 30, 30, 30],
        description="Pauses between retries of a job step while a service is unavailable; then the job fails.",
    )
    job_concurrency: int = Field(default=1, ge=1, le=16, description="Jobs running at once per orchestrator.")
    job_ttl_s: int = Field(default=7 * 86_400, ge=60, description="How long a finished job's status is kept.")
    generation_job_ttl_s: int = Field(
        default=86_400, ge=60, description="How long a generation job, its status and answer, is kept."
    )
    generation_job_concurrency: int = Field(
        default=2, ge=1, le=64, description="Generation jobs running at once per orchestrator."
    )
    generation_job_claim_idle_s: float = Field(
        default=60.0,
        gt=0,
        description="A running job whose worker has been silent this long (it died) is taken over.",
    )
    generation_job_max_attempts: int = Field(
        default=3, ge=1, le=20, description="Runs of one job (takeovers included) before it is failed."
    )
    generation_job_retry_backoff_s: list[float] = Field(
        default=[0.5, 1, 2, 4, 8],
        description="Pauses between retries of a job while a service is unavailable; then the job fails.",
    )
    generation_job_poll_s: float = Field(
        default=1.0, gt=0, le=30, description="How long an idle worker waits on the queue per read."
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="Signs job webhooks (HMAC-SHA256 in `X-Signature`); required for webhooks."
    )
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts job webhooks may be sent to (comma-separated or JSON list). Empty: webhooks refused.",
    )
    webhook_timeout_s: float = Field(default=5.0, gt=0, description="Per webhook delivery attempt.")
    webhook_retry_backoff_s: list[float] = Field(
        default=[1, 5, 30],
        description="Pauses between webhook delivery attempts; then it is recorded failed.",
    )
    safety_enabled: bool = Field(default=True, description="Run input and output checks on every query.")
    safety_fail_open: bool = Field(
        default=False, description="Safety service down: answer unchecked (true) or 503 naming it (false)."
    )
    safety_fail_open_policies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Safety policies (an API key's `safety_policy`) that fail open although the default "
        "is closed (comma-separated or JSON list).",
    )
    safety_fail_open_tenants: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Tenants whose requests fail open when their key names no safety policy.",
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
    embedding_model_ttl_s: float = Field(
        default=30.0,
        gt=0,
        description="How long the embedding model id last reported is trusted for cached vectors; after "
        "that the next embedding goes to the service and re-learns it (a backend switch is noticed).",
    )
    reembed_batch_points: int = Field(
        default=128, ge=1, le=2048, description="Points re-embedded per step of a re-embedding job."
    )

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            raw = value.strip()
            parsed = json.loads(raw) if raw.startswith("[") else raw.split(",")
            return [str(h).strip().lower() for h in parsed if str(h).strip()]
        return value

    @field_validator("allowed_models", mode="before")
    @classmethod
    def _split_models(cls, value: object) -> object:
        if isinstance(value, str):
            raw = value.strip()
            parsed = json.loads(raw) if raw.startswith("[") else raw.split(",")
            return [str(m).strip() for m in parsed if str(m).strip()]
        return value

    @field_validator("safety_fail_open_policies", "safety_fail_open_tenants", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            raw = value.strip()
            parsed = json.loads(raw) if raw.startswith("[") else raw.split(",")
            return [str(n).strip() for n in parsed if str(n).strip()]
        return value

    @model_validator(mode="after")
    def _distinct_experiments(self) -> Settings:
        names = [e.name for e in self.experiments]
        if len(set(names)) != len(names):
            raise ValueError("experiments: names must be distinct")
        return self

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        return self
