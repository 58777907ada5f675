"""A local Hugging Face causal LM (a model folder, never a hub download) via transformers.

Needs the optional extra `rag-llm[transformers]`; the backend registry imports this module only
when `LLM_BACKEND=transformers`, so the service runs without it. Named `transformers_local` so it
never shadows the `transformers` package.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from starlette.concurrency import run_in_threadpool
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    StoppingCriteria,
    StoppingCriteriaList,
    TextStreamer,
)

from rag_common.contracts import ChatMessage, Usage

from ..ports import Completion, SamplingParams, StreamEnd, StreamEvent
from .threads import Emit, iterate_locked


class _StopWhenSet(StoppingCriteria):
    """Ends generation at the next token once the flag is set (the client went away)."""

    def __init__(self, flag: threading.Event) -> None:
        self._flag = flag

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **_: Any) -> torch.BoolTensor:
        stopped = torch.full((input_ids.shape[0],), self._flag.is_set(), device=input_ids.device)
        return stopped  # type: ignore[return-value]


class _EmittingStreamer(TextStreamer):
    """Hands each decoded piece straight to the event loop.

    TextIteratorStreamer would need a second thread to drain its blocking queue; overriding the
    streamer's sink keeps generation and hand-off in the one worker thread.
    """

    def __init__(self, tokenizer: Any, emit: Emit[StreamEvent]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._emit = emit

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self._emit(text)


@dataclass(frozen=True, slots=True)
class _Generated:
    token_ids: list[int]
    prompt_tokens: int
    finish_reason: str

    @property
    def usage(self) -> Usage:
        completion = len(self.token_ids)
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=completion,
            total_tokens=self.prompt_tokens + completion,
        )


class TransformersBackend:
    def __init__(self, *, model_name: str, model_path: str, context_window: int) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self._device = "cuda" if torch.cuda.is_available() else "cpu"
        self._tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(model_path, local_files_only=True)
        self._model = model.to(self._device)  # type: ignore[arg-type]  # transformers' stub of .to is wrong
        self._model.eval()
        self._lock = asyncio.Lock()
        self.model_name = model_name
        positions = getattr(model.config, "max_position_embeddings", None)
        self.context_window = min(context_window, positions) if positions else context_window

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """The real tokenizer on the prompt `_generate` builds."""
        ids = self._tokenizer(self._prompt(messages), add_special_tokens=False)["input_ids"]
        return len(ids)

    async def complete(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        async with self._lock:
            generated = await run_in_threadpool(self._generate, messages, params, None, None)
        text = str(self._tokenizer.decode(generated.token_ids, skip_special_tokens=True))
        return Completion(text=text, finish_reason=generated.finish_reason, usage=generated.usage)

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
        """Nothing to release beyond what garbage collection frees."""

    def _produce(
        self,
        messages: Sequence[ChatMessage],
        params: SamplingParams,
        emit: Emit[StreamEvent],
        stop: threading.Event,
    ) -> None:
        generated = self._generate(messages, params, _EmittingStreamer(self._tokenizer, emit), stop)
        emit(StreamEnd(finish_reason=generated.finish_reason, usage=generated.usage))

    def _prompt(self, messages: Sequence[ChatMessage]) -> str:
        turns = [{"role": m.role, "content": m.content} for m in messages]
        if getattr(self._tokenizer, "chat_template", None):
            prompt = self._tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
            return str(prompt)
        return "\n".join(f"{t['role']}: {t['content']}" for t in turns) + "\nassistant:"

    def _config(self, params: SamplingParams) -> GenerationConfig:
        eos = self._tokenizer.eos_token_id
        config = GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=params.max_tokens,
            do_sample=params.temperature > 0,
            eos_token_id=eos,
            pad_token_id=self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else eos,
            stop_strings=list(params.stop) or None,
        )
        if config.do_sample:
            config.temperature = params.temperature
            config.top_p = 1.0 if params.top_p is None else params.top_p
        return config

    def _generate(
        self,
        messages: Sequence[ChatMessage],
        params: SamplingParams,
        streamer: TextStreamer | None,
        stop: threading.Event | None,
    ) -> _Generated:
        """Blocking; runs in a worker thread under the lock."""
        inputs = self._tokenizer(self._prompt(messages), return_tensors="pt", add_special_tokens=False)
        inputs = inputs.to(self._device)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        criteria = StoppingCriteriaList([_StopWhenSet(stop)] if stop is not None else [])
        with torch.inference_mode():
            output = self._model.generate(
                **inputs,
                generation_config=self._config(params),
                stopping_criteria=criteria,
                streamer=streamer,
                tokenizer=self._tokenizer,
            )
        prompt_tokens = int(inputs["input_ids"].shape[1])
        token_ids = [int(t) for t in output[0][prompt_tokens:]]
        eos = self._tokenizer.eos_token_id
        if token_ids and token_ids[-1] == eos:
            token_ids.pop()
        finish_reason = "length" if len(token_ids) >= params.max_tokens else "stop"
        return _Generated(token_ids=token_ids, prompt_tokens=prompt_tokens, finish_reason=finish_reason)
