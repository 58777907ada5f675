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

from ..errors import BACKEND_SERVICE, backend_unavailable
from ..ports import Completion, SamplingParams, StreamEnd, StreamEvent

logger = logging.getLogger(__name__)

CLIENT_FAULT_STATUS = frozenset({400, 413, 422})
"""Upstream refusals caused by the request itself; every other failure is the backend's (503)."""


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
        return backend_unavailable("The LLM backend did not answer in time.")
    if isinstance(exc, openai.APIStatusError):
        logger.warning("llm backend answered %s", exc.status_code, extra={"upstream_message": exc.message})
        if exc.status_code in CLIENT_FAULT_STATUS:
            return UpstreamError(
                exc.status_code,
                "Rejected by the LLM backend",
                f"The LLM backend refused the request (HTTP {exc.status_code}).",
                {"service": BACKEND_SERVICE, "type_slug": "upstream-rejected"},
            )
    return backend_unavailable()


@contextmanager
def _backend_errors() -> Iterator[None]:
    """SDK failures become problem+json errors: connection, timeout and 5xx are a 503."""
    try:
        yield
    except openai.OpenAIError as exc:
        raise _translate(exc) from exc


class OpenAICompatBackend:
    def __init__(
        self,
        *,
        model_name: str,
        upstream_model: str,
        base_url: str,
        api_key: str | None,
        timeout_s: float,
        connect_timeout_s: float,
        max_retries: int,
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
        finish_reason, usage = "stop", Usage()
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
                            yield choice.delta.content
        yield StreamEnd(finish_reason=finish_reason, usage=usage)

    async def aclose(self) -> None:
        await self._client.close()


def _openai_messages(messages: Sequence[ChatMessage]) -> list[ChatCompletionMessageParam]:
    return cast(list[ChatCompletionMessageParam], [m.model_dump() for m in messages])
