"""Settings every service shares; each service subclasses with its own env prefix."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Common knobs. A subclass sets `model_config` with its `env_prefix` (e.g. `GATEWAY_`)."""

    model_config = SettingsConfigDict(extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    max_body_bytes: int = Field(default=1_048_576, gt=0, description="Larger request bodies get 413.")
    max_upload_bytes: int = Field(
        default=50 * 1_048_576, gt=0, description="The limit instead for file uploads (multipart)."
    )
    upstream_timeout_s: float = Field(default=30.0, gt=0, description="Total timeout of one downstream call.")
    upstream_connect_timeout_s: float = Field(default=2.0, gt=0)
    upstream_retries: int = Field(default=2, ge=0, description="Retries of idempotent downstream calls.")
