"""Generation telemetry on the request span, named after the OpenTelemetry gen_ai conventions.

The `gen_ai.*` attribute names follow the GenAI semantic conventions (request and response
model, token usage, finish reasons). Time to first token and time per output token reuse the
names of the conventions' server metrics (`gen_ai.server.time_to_first_token`,
`gen_ai.server.time_per_output_token`, in seconds) as span attributes, for streams only: a
non-streamed answer has no first token to time, the span's own duration says how long it took.
`gen_ai.response.model` is the served name; `rag.model.version` says which version of it generated.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from opentelemetry.trace import Span

from rag_common import metrics
from rag_common.contracts import Usage
from rag_common.model_slots import MODEL_VERSION_ATTRIBUTE

from .ports import SamplingParams
from .routing import Served

OPERATION = "gen_ai.operation.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TIME_TO_FIRST_TOKEN = "gen_ai.server.time_to_first_token"
TIME_PER_OUTPUT_TOKEN = "gen_ai.server.time_per_output_token"
FALLBACK_FROM = "llm.fallback_from"
CONTEXTS_USED = "llm.contexts_used"


def record_asked(span: Span, model: str, params: SamplingParams) -> None:
    """Before generating, so a failed request's span still says what was asked."""
    span.set_attribute(OPERATION, "chat")
    span.set_attribute(REQUEST_MODEL, model)
    span.set_attribute("gen_ai.request.max_tokens", params.max_tokens)
    span.set_attribute("gen_ai.request.temperature", params.temperature)


def record_served(span: Span, served: Served) -> None:
    span.set_attribute(RESPONSE_MODEL, served.model)
    span.set_attribute(MODEL_VERSION_ATTRIBUTE, served.version)
    if served.fallback:
        span.set_attribute(FALLBACK_FROM, served.requested)


def record_result(span: Span, usage: Usage, finish_reason: str, model: str) -> None:
    metrics.record_tokens(model, prompt=usage.prompt_tokens, completion=usage.completion_tokens)
    span.set_attribute(INPUT_TOKENS, usage.prompt_tokens)
    span.set_attribute(OUTPUT_TOKENS, usage.completion_tokens)
    span.set_attribute(FINISH_REASONS, [finish_reason])


class TokenTimer:
    """Times a stream from the moment the request asked for it: first text, then the rest."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._started = clock()
        self._first: float | None = None
        self._last: float | None = None

    def text_arrived(self) -> None:
        now = self._clock()
        if self._first is None:
            self._first = now
        self._last = now

    def record(self, span: Span, output_tokens: int, model: str) -> None:
        if self._first is None or self._last is None:
            return
        span.set_attribute(TIME_TO_FIRST_TOKEN, self._first - self._started)
        metrics.TIME_TO_FIRST_TOKEN.labels(model=model).observe(self._first - self._started)
        if output_tokens > 1:
            per_token = (self._last - self._first) / (output_tokens - 1)
            span.set_attribute(TIME_PER_OUTPUT_TOKEN, per_token)
            metrics.INTER_TOKEN_LATENCY.labels(model=model).observe(per_token)
