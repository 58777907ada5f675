from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from rag_common.settings import REQUEST_HEAVY_GC_THRESHOLD, ServiceSettings, gc_threshold_field

from .ports import Scope

DEVELOPMENT_API_KEY = "rag-dev-key"
DEVELOPMENT_ADMIN_API_KEY = "rag-admin-key"
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
MIN_SHARED_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")
    gc_young_threshold: int = gc_threshold_field(REQUEST_HEAVY_GC_THRESHOLD)

    orchestrator_url: str = "http://127.0.0.1:8001"
    orchestrator_timeout_s: float = Field(
        default=180.0, gt=0, description="A whole RAG answer, generation included."
    )
    upstream_transport: Literal["httpx", "aiohttp"] = Field(
        default="aiohttp",
        description=(
            "The orchestrator client's connection pool: aiohttp's (under the httpx API) or httpx's own, "
            "which scans every pooled connection per request and halves throughput under load."
        ),
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_s: float = Field(
        default=1.0, gt=0, description="Per Redis command; past it the request gets 503."
    )
    cached_keys: int = Field(
        default=10_000,
        ge=1,
        description="API key records each replica keeps in memory (least recently used out first). "
        "Each use is still confirmed against Redis in the rate-limit step, so revocation holds at once.",
    )
    redis_failure_mode: Literal["closed", "open"] = Field(
        default="closed",
        description=(
            "closed: any Redis failure is 503. open: a Redis failure in the rate-limit step admits the "
            "request unlimited; a key this replica has not read yet still needs Redis (503 without it), "
            "and a key it has cached keeps working, unchecked for revocation, until Redis is back."
        ),
    )
    dev_api_key: SecretStr | None = Field(
        default=SecretStr(DEVELOPMENT_API_KEY),
        description="A key registered at start-up (tenant 'dev', every scope); unset it in production.",
    )
    admin_api_key: SecretStr | None = Field(
        default=SecretStr(DEVELOPMENT_ADMIN_API_KEY),
        description="Guards /v1/admin/keys; the default is refused outside development. Empty: no admin key.",
    )
    rate_limit_per_minute: int = Field(default=60, ge=1, description="Requests per key per minute.")
    tenant_rate_limit_per_minute: int = Field(
        default=600, ge=1, description="Requests per tenant per minute, over all its keys."
    )
    tokens_per_minute: int = Field(
        default=100_000, ge=1, description="LLM tokens per key per minute (estimated, then settled)."
    )
    tenant_tokens_per_minute: int = Field(
        default=1_000_000, ge=1, description="LLM tokens per tenant per minute, over all its keys."
    )
    default_max_tokens: int = Field(
        default=256, ge=1, description="Completion tokens assumed when a request sets no max_tokens."
    )
    passage_tokens: int = Field(
        default=200, ge=0, description="Prompt tokens assumed per retrieved passage (top_k) in estimates."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed by CORS (comma-separated or JSON list; '*' for any). Empty: no CORS.",
    )
    jwt_jwks_url: str | None = Field(
        default=None, description="The identity provider's JWKS URL; setting it (or a key) enables JWT auth."
    )
    jwt_public_key: str | None = Field(
        default=None, description="A static PEM public key instead of a JWKS URL."
    )
    jwt_shared_secret: SecretStr | None = Field(
        default=None, description="An HMAC secret; only with it may jwt_algorithms name HS256/HS384/HS512."
    )
    jwt_algorithms: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(ASYMMETRIC_ALGORITHMS),
        description="Accepted `alg` values (comma-separated or JSON list); 'none' is always refused.",
    )
    jwt_issuer: str | None = Field(
        default=None, description="Required `iss`; must be set when JWT auth is on."
    )
    jwt_audience: str | None = Field(
        default=None, description="Required `aud`; must be set when JWT auth is on."
    )
    jwt_leeway_s: float = Field(default=30.0, ge=0, description="Clock skew allowed on exp, nbf and iat.")
    jwt_tenant_claim: str = Field(default="tenant", description="The claim naming the caller's tenant.")
    jwt_scope_claim: str = Field(
        default="scope", description="The claim with scopes: a space-separated string or a list (scp, roles)."
    )
    jwt_scope_prefix: str = Field(
        default="",
        description="Stripped from claim values before matching, e.g. 'rag:' maps rag:query to query.",
    )
    jwt_scope_map: dict[str, Scope] = Field(
        default_factory=dict, description='Claim values mapped to scopes, JSON, e.g. {"rag-reader": "query"}.'
    )
    jwt_rate_limit_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="Requests per token subject (`sub`) per minute; default: rate_limit_per_minute.",
    )
    jwt_tokens_per_minute: int | None = Field(
        default=None, ge=1, description="LLM tokens per token subject per minute; default: tokens_per_minute."
    )
    jwt_jwks_cache_s: float = Field(default=300.0, gt=0, description="How long a fetched JWKS is trusted.")
    jwt_jwks_min_refresh_s: float = Field(
        default=30.0, ge=0, description="Least time between refetches caused by an unknown `kid` (rotation)."
    )
    jwt_jwks_timeout_s: float = Field(default=5.0, gt=0, description="Timeout of one JWKS fetch.")

    @property
    def jwt_enabled(self) -> bool:
        secret = self.jwt_shared_secret.get_secret_value() if self.jwt_shared_secret else ""
        return bool(self.jwt_jwks_url or self.jwt_public_key or secret)

    @model_validator(mode="before")
    @classmethod
    def _split_origins(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("cors_origins"), str):
            raw = data["cors_origins"].strip()
            parsed = json.loads(raw) if raw.startswith("[") else raw.split(",")
            data["cors_origins"] = [str(o).strip() for o in parsed if str(o).strip()]
        if isinstance(data, dict) and isinstance(data.get("jwt_algorithms"), str):
            raw = data["jwt_algorithms"].strip()
            parsed = json.loads(raw) if raw.startswith("[") else raw.split(",")
            data["jwt_algorithms"] = [str(a).strip() for a in parsed if str(a).strip()]
        return data

    @model_validator(mode="after")
    def _safe_jwt(self) -> Settings:
        if not self.jwt_enabled:
            return self
        unknown = set(self.jwt_algorithms) - set(ASYMMETRIC_ALGORITHMS) - set(HMAC_ALGORITHMS)
        if unknown or not self.jwt_algorithms:
            raise ValueError(
                f"GATEWAY_JWT_ALGORITHMS may name only {ASYMMETRIC_ALGORITHMS + HMAC_ALGORITHMS}"
            )
        if set(self.jwt_algorithms) & set(HMAC_ALGORITHMS) and not self.jwt_shared_secret:
            raise ValueError(
                "GATEWAY_JWT_ALGORITHMS names an HS algorithm but GATEWAY_JWT_SHARED_SECRET is unset"
            )
        secret = self.jwt_shared_secret.get_secret_value() if self.jwt_shared_secret else ""
        if secret and len(secret.encode()) < MIN_SHARED_SECRET_BYTES:
            raise ValueError(f"GATEWAY_JWT_SHARED_SECRET must be at least {MIN_SHARED_SECRET_BYTES} bytes")
        if self.jwt_jwks_url and self.jwt_public_key:
            raise ValueError("Set GATEWAY_JWT_JWKS_URL or GATEWAY_JWT_PUBLIC_KEY, not both")
        public_key_source = self.jwt_jwks_url or self.jwt_public_key
        if set(self.jwt_algorithms) & set(ASYMMETRIC_ALGORITHMS) and not public_key_source:
            raise ValueError(
                "GATEWAY_JWT_ALGORITHMS names RS/PS/ES algorithms but no JWKS URL or public key is set"
            )
        if not (self.jwt_issuer and self.jwt_audience):
            raise ValueError(
                "GATEWAY_JWT_ISSUER and GATEWAY_JWT_AUDIENCE must be set when JWT auth is enabled"
            )
        return self

    @model_validator(mode="after")
    def _no_default_keys_outside_development(self) -> Settings:
        key = self.dev_api_key.get_secret_value() if self.dev_api_key else None
        if self.environment == "production" and key == DEVELOPMENT_API_KEY:
            raise ValueError(
                "GATEWAY_DEV_API_KEY must be changed or unset when GATEWAY_ENVIRONMENT is production"
            )
        admin = self.admin_api_key.get_secret_value() if self.admin_api_key else None
        if self.environment != "development" and admin == DEVELOPMENT_ADMIN_API_KEY:
            raise ValueError("GATEWAY_ADMIN_API_KEY must be set to a secret (or empty) outside development")
        return self
