"""Settings every service shares; each service subclasses with its own env prefix."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag_common.deprecation import DeprecatedRoute

PYTHON_GC_THRESHOLD = 700
# For the services whose requests are many and small (gateway, orchestrator, embedding): at 700 the
# collector ran about once per request. Not for those holding large buffers per request (llm,
# safety): their few allocations would let cyclic garbage linger (llm +40 MB in the load test).
REQUEST_HEAVY_GC_THRESHOLD = 20_000


def gc_threshold_field(default: int) -> Any:
    return Field(
        default=default,
        ge=PYTHON_GC_THRESHOLD,
        description="Allocations between collections of young objects, set once started "
        f"(Python's default is {PYTHON_GC_THRESHOLD}).",
    )


class ServiceSettings(BaseSettings):
    """Common knobs. A subclass sets `model_config` with its `env_prefix` (e.g. `GATEWAY_`)."""

    # validate_by_name: `internal_token=` works in code although its env var is RAG_INTERNAL_TOKEN.
    model_config = SettingsConfigDict(extra="ignore", validate_by_name=True)

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    max_body_bytes: int = Field(default=1_048_576, gt=0, description="Larger request bodies get 413.")
    max_upload_bytes: int = Field(
        default=50 * 1_048_576, gt=0, description="The limit instead for file uploads (multipart)."
    )
    upstream_timeout_s: float = Field(default=30.0, gt=0, description="Total timeout of one downstream call.")
    upstream_connect_timeout_s: float = Field(default=2.0, gt=0)
    upstream_retries: int = Field(default=2, ge=0, description="Retries of idempotent downstream calls.")
    upstream_transport: Literal["httpx", "aiohttp"] = Field(
        default="httpx",
        description="httpx's own connection pool, or aiohttp's under the same httpx API (httpx-aiohttp).",
    )
    upstream_breaker_failures: int = Field(
        default=5, ge=0, description="Consecutive failures of one downstream that open its breaker; 0: off."
    )
    upstream_breaker_cooldown_s: float = Field(
        default=10.0, ge=0, description="How long an open breaker fails fast before one probe; 0: off."
    )
    internal_token: SecretStr | None = Field(
        default=None,
        validation_alias="RAG_INTERNAL_TOKEN",
        description="Shared by all services (one env var, no prefix): internal services require it "
        "in X-Internal-Token, clients send it.",
    )
    drain_delay_s: float = Field(
        default=2.0, ge=0, description="After SIGTERM, /readyz answers 503 this long before listening stops."
    )
    drain_timeout_s: float = Field(
        default=20.0, ge=0, description="Then in-flight requests and streams get this long to finish."
    )
    gc_young_threshold: int = gc_threshold_field(PYTHON_GC_THRESHOLD)
    deprecated_routes: list[DeprecatedRoute] = Field(
        default_factory=list,
        description="JSON list of deprecated paths: their responses carry Deprecation, Sunset and Link headers.",
    )
