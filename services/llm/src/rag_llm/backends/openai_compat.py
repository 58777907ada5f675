"""Any OpenAI-compatible server (vLLM, llama.cpp's server, TGI, OpenAI itself) through the `openai` SDK."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterator, Sequence
from contextlib import contextmanager
from typing import cast

import openai
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionMessageParam

from rag_common.contracts import ChatMessage, Usage
from rag_common.errors import ServiceError, UpstreamError

from ..errors import BACKEND_SERVICE, BackendFailure
from ..ports import Completion, SamplingParams, StreamEnd, StreamEvent

logger = logging.getLogger(__name__)

CLIENT_FAULT_STATUS = frozenset({400, 413, 422})
"""Upstream refusals caused by the request itself; every other failure is the backend's (503)."""
CHARS_PER_TOKEN_ESTIMATE = 3
MESSAGE_OVERHEAD_TOKENS = 8


def _to_usage(usage: CompletionUsage | None) -> Usage:
    if usage is None:
        return Usage()
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def _translate(exc: openai.OpenAIError) -> ServiceError:
    if isinstance(exc, openai.APITimeoutError):
        return BackendFailure("The LLM backend did not answer in time.", retriable=True)
    if isinstance(exc, openai.APIConnectionError):
        return BackendFailure(retriable=True)
    if isinstance(exc, openai.APIStatusError):
        logger.warning("llm backend answered %s", exc.status_code, extra={"upstream_message": exc.message})
        if exc.status_code in CLIENT_FAULT_STATUS:
            return UpstreamError(
                exc.status_code,
                "Rejected by the LLM backend",
                f"The LLM backend refused the request (HTTP {exc.status_code}).",
                {"service": BACKEND_SERVICE, "type_slug": "upstream-rejected"},
            )
        return BackendFailure(retriable=exc.status_code == 429 or exc.status_code >= 500)
    return BackendFailure(retriable=False)


@contextmanager
def _backend_errors() -> Iterator[None]:
    """SDK failures become problem+json errors: connection, timeout, 429 and 5xx are a retriable 503."""
    try:
        yield
    except openai.OpenAIError as exc:
        raise _translate(exc) from exc


class OpenAICompatBackend:
    """Retries are the model router's job (with backoff and a breaker), so the SDK's are off by default."""

    def __init__(
        self,
        *,
        model_name: str,
        upstream_model: str,
        base_url: str,
        api_key: str | None,
        timeout_s: float,
        connect_timeout_s: float,
        context_window: int,
        max_retries: int = 0,
    ) -> None:
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            # Local servers need no key, but the SDK refuses to start without one.
            api_key=api_key or "not-needed",
            timeout=openai.Timeout(timeout_s, connect=connect_timeout_s),
            max_retries=max_retries,
        )
        self._upstream_model = upstream_model
        self.model_name = model_name
        self.context_window = context_window

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """A conservative estimate, not the server's tokenizer (which it does not expose).

        One token per 3 UTF-8 bytes (English BPE vocabularies average about 4) plus 8 per message
        for the chat template's role markers: it overcounts, so packing may drop a passage that
        would have fit, but never sends a prompt the server must refuse.
        """
        size = sum(len(m.content.encode()) for m in messages)
        return -(-size // CHARS_PER_TOKEN_ESTIMATE) + MESSAGE_OVERHEAD_TOKENS * len(messages)

    async def complete(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        with _backend_errors():
            response = await self._client.chat.completions.create(
                model=self._upstream_model,
                messages=_openai_messages(messages),
                max_tokens=params.max_tokens,
                temperature=params.temperature,
                top_p=openai.omit if params.top_p is None else params.top_p,
                stop=list(params.stop) or openai.omit,
                seed=openai.omit if params.seed is None else params.seed,
                stream=False,
            )
        choice = response.choices[0]
        return Completion(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason or "stop",
            usage=_to_usage(response.usage),
        )

    async def stream(
        self, messages: Sequence[ChatMessage], params: SamplingParams
    ) -> AsyncGenerator[StreamEvent, None]:
        finish_reason, usage, pieces = "stop", None, 0
        with _backend_errors():
            chunks = await self._client.chat.completions.create(
                model=self._upstream_model,
                messages=_openai_messages(messages),
                max_tokens=params.max_tokens,
                temperature=params.temperature,
                top_p=openai.omit if params.top_p is None else params.top_p,
                stop=list(params.stop) or openai.omit,
                seed=openai.omit if params.seed is None else params.seed,
                stream=True,
                stream_options={"include_usage": True},
            )
            async with chunks:
                async for chunk in chunks:
                    usage = _to_usage(chunk.usage) if chunk.usage else usage
                    for choice in chunk.choices:
                        finish_reason = choice.finish_reason or finish_reason
                        if choice.delta.content:
                            pieces += 1
                            yield choice.delta.content
        yield StreamEnd(finish_reason=finish_reason, usage=usage or self._estimated_usage(messages, pieces))

    def _estimated_usage(self, messages: Sequence[ChatMessage], pieces: int) -> Usage:
        """For servers that ignore `include_usage` (llama_cpp.server does): one token per content
        chunk, as such servers send them, and the prompt estimate of `count_tokens`."""
        prompt = self.count_tokens(messages)
        return Usage(prompt_tokens=prompt, completion_tokens=pieces, total_tokens=prompt + pieces)

    async def aclose(self) -> None:
        await self._client.close()


def _openai_messages(messages: Sequence[ChatMessage]) -> list[ChatCompletionMessageParam]:
    return cast(list[ChatCompletionMessageParam], [m.model_dump() for m in messages])
