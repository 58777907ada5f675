"""What the service needs from a text generator, whatever runs the model."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Protocol

from rag_common.contracts import ChatMessage, Usage


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Generation parameters with the service defaults already applied."""

    max_tokens: int
    temperature: float
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class SamplingDefaults:
    max_tokens: int
    temperature: float


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish_reason: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The last event of every stream: why generation stopped and what it cost."""

    finish_reason: str
    usage: Usage


StreamEvent = str | StreamEnd
"""A stream yields text deltas (str), then exactly one `StreamEnd`."""


class ChatBackend(Protocol):
    """Generates chat completions; implementations serialize access to models that need it."""

    model_name: str
    context_window: int
    """Tokens the prompt and the answer share."""

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Prompt tokens of `messages` once the chat template is applied."""
        ...

    async def complete(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion: ...

    def stream(
        self, messages: Sequence[ChatMessage], params: SamplingParams
    ) -> AsyncGenerator[StreamEvent, None]:
        """Text deltas, then a `StreamEnd`; closing the iterator early stops generation."""
        ...

    async def aclose(self) -> None: ...
