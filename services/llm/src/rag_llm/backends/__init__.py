"""Backend registry: each `ModelSpec` names one factory; each imports its adapter only when chosen."""

from __future__ import annotations

from collections.abc import Callable

from ..ports import ChatBackend
from ..settings import TRANSFORMERS_NEEDS_PATH, BackendName, ModelSpec, Settings

BackendFactory = Callable[[ModelSpec, Settings], ChatBackend]


def _llamacpp(spec: ModelSpec, settings: Settings) -> ChatBackend:
    from .llamacpp import LlamaCppBackend

    return LlamaCppBackend(
        model_name=spec.name,
        model_path=spec.model_path,
        context_window=spec.context_window or settings.context_window,
        n_threads=settings.n_threads,
        gpu_layers=settings.gpu_layers,
    )


def _openai(spec: ModelSpec, settings: Settings) -> ChatBackend:
    from .openai_compat import OpenAICompatBackend

    return OpenAICompatBackend(
        model_name=spec.name,
        upstream_model=spec.model or spec.name,
        base_url=spec.base_url or settings.openai_base_url,
        api_key=spec.api_key.get_secret_value() if spec.api_key else None,
        timeout_s=spec.timeout_s or settings.request_timeout_s,
        connect_timeout_s=settings.upstream_connect_timeout_s,
        context_window=spec.context_window or settings.context_window,
    )


def _transformers(spec: ModelSpec, settings: Settings) -> ChatBackend:
    if not spec.model_path:
        raise ValueError(TRANSFORMERS_NEEDS_PATH)
    from .transformers_local import TransformersBackend

    return TransformersBackend(
        model_name=spec.name,
        model_path=spec.model_path,
        context_window=spec.context_window or settings.context_window,
    )


BACKENDS: dict[BackendName, BackendFactory] = {
    "llamacpp": _llamacpp,
    "openai": _openai,
    "transformers": _transformers,
}


def build_backend(spec: ModelSpec, settings: Settings) -> ChatBackend:
    """Blocking (loads model weights); call it off the event loop."""
    return BACKENDS[spec.backend](spec, settings)
