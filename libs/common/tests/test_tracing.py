from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from rag_common.app import create_service_app
from rag_common.context import current_request_id, set_request_id
from rag_common.http import ServiceClient
from rag_common.settings import ServiceSettings
from rag_common.telemetry import background_task, setup_tracing, tracer

from .test_http import Echo, build_upstream


@asynccontextmanager
async def _no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


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


async def test_a_request_gets_one_server_span_named_after_its_route_and_a_probe_gets_none() -> None:
    exporter = InMemorySpanExporter()
    setup_tracing("test", extra_processor=SimpleSpanProcessor(exporter))
    router = APIRouter()

    @router.get("/things/{name}")
    async def thing(name: str) -> dict[str, str]:
        return {"name": name}

    app = create_service_app(
        service="test", settings=ServiceSettings(), lifespan=_no_lifespan, routers=[router]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/healthz")).status_code == 200
        with tracer("test").start_as_current_span("caller") as caller:
            traceparent: dict[str, str] = {}
            propagate.inject(traceparent)
            assert (await client.get("/things/etna", headers=traceparent)).status_code == 200
    spans = [
        s for s in exporter.get_finished_spans() if s.context.trace_id == caller.get_span_context().trace_id
    ]
    [server] = [s for s in spans if s.name != "caller"]
    assert server.name == "GET /things/{name}"
    assert server.kind == SpanKind.SERVER
    assert server.parent is not None
    assert server.parent.span_id == caller.get_span_context().span_id
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/things/{name}"
    assert server.attributes["http.response.status_code"] == 200
    assert not [s for s in exporter.get_finished_spans() if "healthz" in s.name], "probes are not traced"
