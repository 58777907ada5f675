"""Small real backends implementing `ChatBackend`, for behaviour the real models cannot be made to show."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

from rag_common.contracts import ChatMessage, Usage
from rag_common.errors import ServiceError
from rag_llm.ports import Completion, SamplingParams, StreamEnd, StreamEvent


class ScriptedBackend:
    """Streams the given pieces, then fails with `fail_with` if set, else ends normally."""

    def __init__(self, pieces: Sequence[str], fail_with: ServiceError | None = None) -> None:
        self.model_name = "scripted"
        self.context_window = 2048
        self._pieces = list(pieces)
        self._fail_with = fail_with
        self.seen: list[list[ChatMessage]] = []

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """One token per word: enough for prompts that always fit."""
        return sum(len(m.content.split()) for m in messages)

    async def complete(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        self.seen.append(list(messages))
        if self._fail_with is not None:
            raise self._fail_with
        return Completion(text="".join(self._pieces), finish_reason="stop", usage=self._usage())

    async def stream(
        self, messages: Sequence[ChatMessage], params: SamplingParams
    ) -> AsyncGenerator[StreamEvent, None]:
        self.seen.append(list(messages))
        for piece in self._pieces:
            yield piece
        if self._fail_with is not None:
            raise self._fail_with
        yield StreamEnd(finish_reason="stop", usage=self._usage())

    async def aclose(self) -> None:
        """Nothing to release."""

    def _usage(self) -> Usage:
        return Usage(prompt_tokens=3, completion_tokens=len(self._pieces), total_tokens=3 + len(self._pieces))


class GatedBackend(ScriptedBackend):
    """Like a local model: one generation at a time, and each waits until `opened` is set."""

    def __init__(self) -> None:
        super().__init__(["ok"])
        self.model_name = "gated"
        self.opened = asyncio.Event()
        self.arrived = 0
        self._lock = asyncio.Lock()

    async def complete(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        self.arrived += 1
        async with self._lock:
            await self.opened.wait()
            return await super().complete(messages, params)
