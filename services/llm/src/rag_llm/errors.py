"""Errors this service raises; rendered as problem+json by rag_common."""

from __future__ import annotations

from rag_common.errors import NotFound, UnprocessableContent, UpstreamUnavailable

BACKEND_SERVICE = "llm-backend"
"""The name 503s carry when the generation backend (e.g. an OpenAI-compatible server) fails."""


class ModelNotServed(NotFound):
    type_slug = "model-not-found"

    def __init__(self, requested: str, served: str) -> None:
        super().__init__(
            f"Model '{requested}' is not served here; this service serves '{served}'.",
            extra={"model": requested},
        )


class PromptTooLong(UnprocessableContent):
    type_slug = "context-length-exceeded"

    def __init__(self, context_window: int) -> None:
        super().__init__(
            f"The prompt does not fit the model's context window of {context_window} tokens; "
            "send fewer or shorter messages.",
            extra={"context_window": context_window},
        )


def backend_unavailable(detail: str | None = None) -> UpstreamUnavailable:
    return UpstreamUnavailable(BACKEND_SERVICE, detail)
