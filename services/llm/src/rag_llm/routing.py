"""Several named backends behind one service: pick by model name, retry, break circuits, fall back.

For each request the router walks a chain: the model asked for (or the default, the first one
configured), then its `LLM_FALLBACKS` in order. Each candidate is skipped while its circuit
breaker is open, refused at once when its wait queue is full, and otherwise called with retries
and exponential backoff on retriable failures (connection errors, timeouts, 429 and 5xx). A
stream is retried or handed to a fallback only until its first event arrives; after that the
client has bytes and the failure goes to it in-stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, AsyncExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from typing import TypeVar

from rag_common.breaker import CircuitBreaker
from rag_common.contracts import ChatMessage
from rag_common.errors import ServiceError, ServiceUnavailable, UpstreamUnavailable
from rag_common.model_slots import MODEL_VERSION_HEADER, ModelSlot, ModelSlotList

from .admission import AdmissionGate
from .errors import BACKEND_SERVICE, BackendFailure, ModelNotServed
from .ports import ChatBackend, Completion, SamplingParams, StreamEvent

logger = logging.getLogger(__name__)
T = TypeVar("T")
FALLBACK_HEADER = "X-Model-Fallback"


class BreakerOpen(UpstreamUnavailable):
    type_slug = "circuit-open"

    def __init__(self, model: str) -> None:
        super().__init__(BACKEND_SERVICE, f"Model '{model}' is failing repeatedly; skipped for now.")


@dataclass(slots=True)
class ModelEntry:
    slot: ModelSlot[ChatBackend]
    """The version serving this name now; a swap replaces it while the breaker and queue stay."""
    breaker: CircuitBreaker
    gate: AdmissionGate | None
    """Local models only: remote servers queue on their own side."""

    @property
    def name(self) -> str:
        return self.slot.name

    @property
    def backend(self) -> ChatBackend:
        """The current version's backend, for what needs no held version (counting prompt tokens)."""
        return self.slot.current.model

    def admit(self) -> AbstractContextManager[None]:
        return self.gate.slot() if self.gate is not None else nullcontext()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int
    backoff_s: float

    def delays(self) -> list[float]:
        return [self.backoff_s * 2**attempt for attempt in range(self.retries)]


@dataclass(frozen=True, slots=True)
class Served:
    """Who answered a request: `model` differs from `requested` when a fallback did; `version` is
    the model version that generated it."""

    requested: str
    model: str
    version: str

    @property
    def headers(self) -> dict[str, str]:
        fallback = {FALLBACK_HEADER: f"{self.requested}->{self.model}"} if self.fallback else {}
        return {MODEL_VERSION_HEADER: self.version} | fallback

    @property
    def fallback(self) -> bool:
        return self.requested != self.model


@dataclass(frozen=True, slots=True)
class OpenStream:
    first: StreamEvent
    events: AsyncGenerator[StreamEvent, None]
    served: Served


@contextmanager
def _judged(breaker: CircuitBreaker) -> Iterator[None]:
    """Backend failures (503s) count against the breaker; any other answer proves it alive."""
    verdict: bool | None = None
    try:
        yield
        verdict = True
    except ServiceUnavailable:
        verdict = False
        raise
    except ServiceError:
        verdict = True
        raise
    finally:
        if verdict is None:
            breaker.release()
        elif verdict:
            breaker.record_success()
        else:
            breaker.record_failure()


class ModelRouter:
    def __init__(
        self,
        entries: Sequence[ModelEntry],
        *,
        fallbacks: Mapping[str, Sequence[str]],
        retry: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not entries:
            raise ValueError("The router needs at least one model.")
        self._entries = {entry.name: entry for entry in entries}
        self._fallbacks = {name: list(chain) for name, chain in fallbacks.items()}
        self._retry = retry
        self._sleep = sleep
        self.default = entries[0].name

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    def entry(self, requested: str | None) -> ModelEntry:
        """The entry a request names (or the default); unknown names are a 404."""
        name = requested or self.default
        if name not in self._entries:
            raise ModelNotServed(name, self.names)
        return self._entries[name]

    def describe(self) -> ModelSlotList:
        return ModelSlotList(models=[entry.slot.describe() for entry in self._entries.values()])

    async def aclose(self) -> None:
        for entry in self._entries.values():
            await entry.slot.aclose()

    async def complete(
        self, requested: str | None, messages: Sequence[ChatMessage], params: SamplingParams
    ) -> tuple[Completion, Served]:
        async def attempt(entry: ModelEntry) -> tuple[Completion, str]:
            async with entry.slot.acquire() as version:
                with entry.admit():
                    completion = await self._with_retries(
                        entry, lambda: version.model.complete(messages, params)
                    )
            return completion, version.version

        return await self._through_chain(requested, attempt)

    async def open_stream(
        self, requested: str | None, messages: Sequence[ChatMessage], params: SamplingParams
    ) -> OpenStream:
        """Start generating; the returned events hold the model version and its queue place until closed."""

        async def attempt(
            entry: ModelEntry,
        ) -> tuple[tuple[StreamEvent, AsyncGenerator[StreamEvent, None]], str]:
            async with AsyncExitStack() as stack:
                version = await stack.enter_async_context(entry.slot.acquire())
                stack.enter_context(entry.admit())
                backend = version.model
                first, events = await self._with_retries(
                    entry, lambda: _first_event(backend, messages, params)
                )
                held = stack.pop_all()  # from here on the stream releases the version and queue place
            return (first, _guarded(events, entry.breaker, held)), version.version

        (first, events), served = await self._through_chain(requested, attempt)
        return OpenStream(first=first, events=events, served=served)

    async def _through_chain(
        self, requested: str | None, attempt: Callable[[ModelEntry], Awaitable[tuple[T, str]]]
    ) -> tuple[T, Served]:
        primary = self.entry(requested)
        chain = [primary, *(self._entries[name] for name in self._fallbacks.get(primary.name, []))]
        failure: ServiceUnavailable | None = None
        for entry in chain:
            try:
                result, version = await attempt(entry)
            except ServiceUnavailable as exc:
                logger.warning("model %s unavailable: %s", entry.name, exc.detail)
                failure = exc
                continue
            return result, Served(requested=primary.name, model=entry.name, version=version)
        assert failure is not None
        raise failure

    async def _with_retries(self, entry: ModelEntry, call: Callable[[], Awaitable[T]]) -> T:
        delays = self._retry.delays()
        while True:
            if not entry.breaker.allow():
                raise BreakerOpen(entry.name)
            try:
                with _judged(entry.breaker):
                    return await call()
            except BackendFailure as exc:
                if not exc.retriable or not delays:
                    raise
                await self._sleep(delays.pop(0))


async def _first_event(
    backend: ChatBackend, messages: Sequence[ChatMessage], params: SamplingParams
) -> tuple[StreamEvent, AsyncGenerator[StreamEvent, None]]:
    events = backend.stream(messages, params)
    first = await anext(events)  # an error here has finalized `events` already
    return first, events


async def _guarded(
    events: AsyncGenerator[StreamEvent, None], breaker: CircuitBreaker, held: AsyncExitStack
) -> AsyncGenerator[StreamEvent, None]:
    """Pass the rest of a stream on; a mid-stream backend failure counts against the breaker."""
    try:
        async for event in events:
            yield event
    except ServiceUnavailable:
        breaker.record_failure()
        raise
    finally:
        await events.aclose()
        await held.aclose()
