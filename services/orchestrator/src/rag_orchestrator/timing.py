"""Where the time of one query goes: a duration per stage, each stage with its own deadline.

A route calls `begin()`; every `stage(...)` below it (concurrent ones too: tasks copy the context, so
they share the recorder) adds its duration to the request's `StageTimings`, opens a child span
`rag.<stage>` and observes the per-stage histogram. The timings become the `Server-Timing` header.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from rag_common import breaker, metrics, telemetry
from rag_common.errors import UpstreamUnavailable

# Server-Timing order: roughly the order a query passes through them.
STAGES = (
    "memory",
    "condense",
    "cache",
    "safety_in",
    "embed",
    "semantic_cache",
    "retrieve",
    "rerank",
    "screen",
    "generate",
    "stream",
    "safety_out",
    "ground",
)

STAGE_DURATION = metrics.histogram(
    "rag_orchestrator_stage_duration_seconds",
    "Time spent in one stage of a RAG query or chat (Server-Timing names).",
    ("stage",),
)

tracer = telemetry.tracer(__name__)
T = TypeVar("T")


@dataclass
class StageTimings:
    started: float = field(default_factory=time.perf_counter)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, seconds: float) -> None:
        """A stage run twice (a follow-up's two input checks) reports the sum."""
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        STAGE_DURATION.labels(stage).observe(seconds)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def milliseconds(self) -> dict[str, float]:
        """Every recorded stage and `total`, in milliseconds."""
        ordered = sorted(self.seconds, key=lambda s: STAGES.index(s) if s in STAGES else len(STAGES))
        return {s: round(self.seconds[s] * 1000, 2) for s in ordered} | {
            "total": round(self.elapsed() * 1000, 2)
        }

    def header(self, *, last: str = "total") -> dict[str, str]:
        """`Server-Timing` with every stage so far; a stream names its last metric `ttfb`."""
        timings = self.milliseconds()
        timings[last] = timings.pop("total")
        return {"Server-Timing": ", ".join(f"{name};dur={ms:.2f}" for name, ms in timings.items())}


_current: ContextVar[StageTimings | None] = ContextVar("stage_timings", default=None)


def begin() -> StageTimings:
    """A fresh recorder for this request (and the tasks it starts)."""
    timings = StageTimings()
    _current.set(timings)
    return timings


def current() -> StageTimings:
    """The request's recorder; outside a request (a job) one that nobody reads."""
    return _current.get() or StageTimings()


@asynccontextmanager
async def stage(
    name: str, *, service: str | None = None, timeout_s: float | None = None
) -> AsyncIterator[None]:
    """Times the block; with `timeout_s` a block still running then is cancelled and the named
    service reported unavailable (503), never left hanging."""
    timings = current()
    started = time.perf_counter()
    with tracer.start_as_current_span(f"rag.{name}") as span:
        try:
            async with asyncio.timeout(timeout_s) as deadline:
                yield
        except TimeoutError as exc:
            if service is None or not deadline.expired():
                raise
            span.set_attribute("rag.stage.timed_out", True)
            breaker.record_failure_of(service)
            raise UpstreamUnavailable(
                service, f"The {service} service did not answer within {timeout_s:g} s."
            ) from exc
        finally:
            seconds = time.perf_counter() - started
            timings.add(name, seconds)
            span.set_attribute("rag.stage.duration_ms", round(seconds * 1000, 2))


async def timed(
    name: str, call: Awaitable[T], *, service: str | None = None, timeout_s: float | None = None
) -> T:
    async with stage(name, service=service, timeout_s=timeout_s):
        return await call
