from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from rag_common.settings import ServiceSettings

DEVELOPMENT_API_KEY = "rag-dev-key"
DEVELOPMENT_ADMIN_API_KEY = "rag-admin-key"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    orchestrator_url: str = "http://127.0.0.1:8001"
    orchestrator_timeout_s: float = Field(
        default=180.0, gt=0, description="A whole RAG answer, generation included."
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_s: float = Field(
        default=1.0, gt=0, description="Per Redis command; past it the request gets 503."
    )
    redis_failure_mode: Literal["closed", "open"] = Field(
        default="closed",
        description=(
            "closed: any Redis failure is 503. open: authentication still needs Redis (503 without it), "
            "but a Redis failure in the rate-limit step admits the request unlimited."
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

    @model_validator(mode="before")
    @classmethod
    def _split_origins(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("cors_origins"), str):
            raw = data["cors_origins"].strip()
            parsed = json.loads(raw) if raw.startswith("[") else raw.split(",")
            data["cors_origins"] = [str(o).strip() for o in parsed if str(o).strip()]
        return data

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
