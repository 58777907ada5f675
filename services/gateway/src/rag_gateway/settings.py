from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from rag_common.settings import ServiceSettings

DEVELOPMENT_API_KEY = "rag-dev-key"


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
    dev_api_key: SecretStr | None = Field(
        default=SecretStr(DEVELOPMENT_API_KEY),
        description="A key registered at start-up (tenant 'dev'); unset it in production.",
    )
    rate_limit_per_minute: int = Field(default=60, ge=1, description="Requests per key per minute.")
    rate_limit_burst: int | None = Field(
        default=None, ge=1, description="Requests a key may send at once; defaults to the per-minute limit."
    )

    @model_validator(mode="after")
    def _no_default_key_in_production(self) -> Settings:
        key = self.dev_api_key.get_secret_value() if self.dev_api_key else None
        if self.environment == "production" and key == DEVELOPMENT_API_KEY:
            raise ValueError(
                "GATEWAY_DEV_API_KEY must be changed or unset when GATEWAY_ENVIRONMENT is production"
            )
        return self
