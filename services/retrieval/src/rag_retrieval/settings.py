from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from rag_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RETRIEVAL_", extra="ignore")

    max_body_bytes: int = Field(
        default=64 * 1_048_576, gt=0, description="Upserts carry vectors: larger limit."
    )
    qdrant_url: str | None = Field(
        default=None, description="A Qdrant server (e.g. http://qdrant:6333); unset = embedded local mode."
    )
    qdrant_api_key: SecretStr | None = None
    qdrant_path: str = Field(default="data/qdrant", description="Data folder of the embedded local mode.")
    qdrant_timeout_s: int = Field(default=10, gt=0)
