"""Errors this service raises; rendered as problem+json by rag_common."""

from __future__ import annotations

from rag_common.errors import NotFound, ServiceUnavailable, UnprocessableContent, UpstreamUnavailable

BACKEND_SERVICE = "llm-backend"
"""The name 503s carry when the generation backend (e.g. an OpenAI-compatible server) fails."""


class ModelNotServed(NotFound):
    type_slug = "model-not-found"

    def __init__(self, requested: str, served: list[str]) -> None:
        names = ", ".join(f"'{name}'" for name in served)
        super().__init__(
            f"Model '{requested}' is not served here; this service serves {names}.",
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


class QueueFull(ServiceUnavailable):
    type_slug = "queue-full"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"Model '{model}' is busy and its wait queue is full; retry shortly.",
            headers={"Retry-After": "1"},
            extra={"model": model},
        )


class ContextTooLong(UnprocessableContent):
    """Even without any context passage, the grounded prompt leaves no room for the answer."""

    type_slug = "context-length-exceeded"

    def __init__(self, *, context_window: int, needed: int) -> None:
        super().__init__(
            f"The question, history and instructions alone need {needed} tokens including room for "
            f"max_tokens, more than the model's context window of {context_window} tokens; shorten the "
            "question or history, or lower max_tokens.",
            extra={"context_window": context_window, "tokens_needed": needed},
        )


class BackendFailure(UpstreamUnavailable):
    """The backend failed; `retriable` says whether the same call may succeed if tried again."""

    def __init__(self, detail: str | None = None, *, retriable: bool) -> None:
        super().__init__(BACKEND_SERVICE, detail)
        self.retriable = retriable
