from __future__ import annotations

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from rag_common.context import current_request_id, set_request_id
from rag_common.http import ServiceClient
from rag_common.telemetry import background_task, setup_tracing, tracer

from .test_http import Echo, build_upstream


async def test_trace_context_flows_from_client_span_to_upstream_server_span() -> None:
    exporter = InMemorySpanExporter()
    provider = setup_tracing("test", extra_processor=SimpleSpanProcessor(exporter))
    app, _ = build_upstream()
    client = ServiceClient(
        "upstream", "http://upstream", transport=httpx.ASGITransport(app=app), tracer_provider=provider
    )
    with tracer("test").start_as_current_span("caller") as caller:
        await client.call("POST", "/flaky", Echo, body={}, idempotent=True)
    trace_id = caller.get_span_context().trace_id
    spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
    client_spans = [s for s in spans if s.kind == SpanKind.CLIENT]
    # In one process the ASGI middleware records the server side as INTERNAL under the client span.
    server_spans = [s for s in spans if s.name == "POST /flaky"]
    assert len(client_spans) == 3, "one client span per attempt"
    assert server_spans, "the upstream's server span joined the caller's trace"
    client_ids = {s.context.span_id for s in client_spans}
    assert all(s.parent is not None and s.parent.span_id in client_ids for s in server_spans)


async def test_a_background_task_gets_a_trace_of_its_own_linked_to_the_request_that_started_it() -> None:
    exporter = InMemorySpanExporter()
    setup_tracing("test", extra_processor=SimpleSpanProcessor(exporter))
    seen: dict[str, object] = {}

    async def job() -> None:
        seen["request_id"] = current_request_id()
        seen["span"] = trace.get_current_span().get_span_context()

    with tracer("test").start_as_current_span("submit") as submit:
        set_request_id("request-that-submitted")
        await background_task(job(), name="ingest-job-1")
    origin = submit.get_span_context()
    [job_span] = [s for s in exporter.get_finished_spans() if s.name == "ingest-job-1"]
    assert seen["request_id"] is None, "the job does not speak for a request that has ended"
    assert job_span.parent is None
    assert job_span.context.trace_id != origin.trace_id
    assert [link.context.span_id for link in job_span.links] == [origin.span_id]
    assert seen["span"] == job_span.context
