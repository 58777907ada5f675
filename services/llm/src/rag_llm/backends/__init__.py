"""Backend registry: `LLM_BACKEND` picks one factory; each imports its adapter only when chosen."""

from __future__ import annotations

from collections.abc import Callable

from ..ports import ChatBackend
from ..settings import TRANSFORMERS_NEEDS_PATH, BackendName, Settings

BackendFactory = Callable[[Settings], ChatBackend]


def _llamacpp(settings: Settings) -> ChatBackend:
    from .llamacpp import LlamaCppBackend

    return LlamaCppBackend(
        model_name=settings.model_name,
        model_path=settings.model_path,
        context_window=settings.context_window,
        n_threads=settings.n_threads,
        gpu_layers=settings.gpu_layers,
    )


def _openai(settings: Settings) -> ChatBackend:
    from .openai_compat import OpenAICompatBackend

    api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return OpenAICompatBackend(
        model_name=settings.model_name,
        upstream_model=settings.openai_model or settings.model_name,
        base_url=settings.openai_base_url,
        api_key=api_key,
        timeout_s=settings.request_timeout_s,
        connect_timeout_s=settings.upstream_connect_timeout_s,
        max_retries=settings.upstream_retries,
    )


def _transformers(settings: Settings) -> ChatBackend:
    if not settings.model_path:
        raise ValueError(TRANSFORMERS_NEEDS_PATH)
    from .transformers_local import TransformersBackend

    return TransformersBackend(model_name=settings.model_name, model_path=settings.model_path)


BACKENDS: dict[BackendName, BackendFactory] = {
    "llamacpp": _llamacpp,
    "openai": _openai,
    "transformers": _transformers,
}


def build_backend(settings: Settings) -> ChatBackend:
    """Blocking (loads model weights); call it off the event loop."""
    return BACKENDS[settings.backend](settings)
