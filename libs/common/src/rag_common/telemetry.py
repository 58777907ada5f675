"""OpenTelemetry: one tracer provider per process, named after the service.

Spans go to OTLP/HTTP when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) variable is set; otherwise nothing is exported.
With the SDK's own switch `OTEL_SDK_DISABLED=true` nothing is instrumented: every span would be a
no-op, and the instrumentation alone cost about a fifth of the gateway's CPU per request.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
from collections.abc import Coroutine, MutableMapping
from contextlib import nullcontext
from typing import Any, TypeVar

import httpx
from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

T = TypeVar("T")

# Probes and Prometheus scrapes, every few seconds: no spans.
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _otlp_configured() -> bool:
    return bool(os.getenv("OTEL_EXPORTER_OTLP_ENDPOINT") or os.getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def sdk_disabled() -> bool:
    return os.getenv("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def setup_tracing(service_name: str, *, extra_processor: SpanProcessor | None = None) -> TracerProvider:
    """Install the process-wide tracer provider once; later calls return the one in force."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        if extra_processor is not None:
            current.add_span_processor(extra_processor)
        return current
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if _otlp_configured():
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if extra_processor is not None:
        provider.add_span_processor(extra_processor)
    trace.set_tracer_provider(provider)
    return provider


def fastapi_telemetry(provider: TracerProvider) -> TelemetryConfig:
    """FastAPI's own tracing, for `FastAPI(telemetry=...)`: one server span per request, named after
    the route FastAPI selected, joined to the caller's trace by its `traceparent`.

    Metrics are Prometheus' (`rag_common.metrics`) and logs our JSON lines, so FastAPI records
    neither; nor does it add spans per dependency and serialization step. Off with the SDK.
    """
    if sdk_disabled():
        return {"tracing": False, "metrics": False, "logs": False}
    return {
        "tracer_provider": provider,
        "metrics": False,
        "logs": False,
        "operation_spans": False,
        "exclude": _untraced,
    }


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED_PATHS


def instrument_client(client: httpx.AsyncClient, provider: TracerProvider) -> None:
    if sdk_disabled():
        return
    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)


class _UntracedTracer(trace.NoOpTracer):
    """The tracer with the SDK disabled: its `start_as_current_span` hands back one shared context
    manager instead of building a generator per span (a few percent of the orchestrator's CPU on a
    cache hit, for spans nobody records)."""

    _no_span = nullcontext(trace.INVALID_SPAN)

    def start_as_current_span(self, *_: Any, **__: Any) -> Any:
        return self._no_span


def tracer(name: str) -> trace.Tracer:
    return _UntracedTracer() if sdk_disabled() else trace.get_tracer(name)


def background_task(work: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
    """Run a job outside the request that started it: in a fresh context (no request id, no current
    span, nothing else of the request) under a root span of its own, linked to the starting span.

    `asyncio.create_task` would copy the request's context: every downstream call of a job running
    long after its request ended would then carry that request's trace and request ids.
    """
    origin = trace.get_current_span().get_span_context()
    links = [trace.Link(origin)] if origin.is_valid else []

    async def traced() -> T:
        with tracer("rag_common.jobs").start_as_current_span(name, links=links):
            return await work

    return asyncio.create_task(traced(), name=name, context=contextvars.Context())
