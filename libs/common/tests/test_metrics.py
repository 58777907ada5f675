from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import StreamingResponse
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from rag_common import metrics
from rag_common.app import create_service_app
from rag_common.health import service_version
from rag_common.settings import ServiceSettings
from rag_common.telemetry import setup_tracing

router = APIRouter()
stream_gate = asyncio.Event()


@router.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals")


@router.post("/upload")
async def upload(body: dict[str, str]) -> dict[str, int]:
    return {"keys": len(body)}


@router.get("/stream")
async def stream() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first\n"
        await stream_gate.wait()
        yield b"second\n"

    return StreamingResponse(chunks(), media_type="text/plain")


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


@pytest.fixture
def client() -> httpx.AsyncClient:
    app = create_service_app(
        service="metricstest",
        settings=ServiceSettings(max_body_bytes=100),
        lifespan=lifespan,
        routers=[router],
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def requests(route: str, status: str, method: str = "GET") -> float:
    return sample("http_requests_total", method=method, route=route, status=status)


async def test_requests_are_counted_by_route_template_not_raw_path(client: httpx.AsyncClient) -> None:
    before = requests("/items/{item_id}", "200")
    for item_id in (1, 2, 3):
        assert (await client.get(f"/items/{item_id}")).status_code == 200
    assert requests("/items/{item_id}", "200") == before + 3
    exposition = (await client.get("/metrics")).text
    assert 'route="/items/{item_id}"' in exposition
    assert 'route="/items/1"' not in exposition


async def test_errors_are_counted_with_their_status(client: httpx.AsyncClient) -> None:
    before_500 = requests("/boom", "500")
    before_422 = requests("/items/{item_id}", "422")
    before_404 = requests(metrics.UNMATCHED_ROUTE, "404")
    assert (await client.get("/boom")).status_code == 500
    assert (await client.get("/items/not-a-number")).status_code == 422
    assert (await client.get("/no/such/path")).status_code == 404
    assert requests("/boom", "500") == before_500 + 1
    assert requests("/items/{item_id}", "422") == before_422 + 1
    assert requests(metrics.UNMATCHED_ROUTE, "404") == before_404 + 1


async def test_body_limit_rejections_are_counted_and_metrics_is_not(client: httpx.AsyncClient) -> None:
    before = requests(metrics.UNMATCHED_ROUTE, "413", method="POST")
    assert (await client.post("/upload", json={"k": "x" * 200})).status_code == 413
    assert requests(metrics.UNMATCHED_ROUTE, "413", method="POST") == before + 1
    await client.get("/metrics")
    assert 'route="/metrics"' not in (await client.get("/metrics")).text


async def test_latency_histogram_has_the_configured_buckets(client: httpx.AsyncClient) -> None:
    name = "http_request_duration_seconds"
    labels = {"method": "GET", "route": "/items/{item_id}", "status": "200"}
    count_before = sample(f"{name}_count", **labels)
    inf_before = sample(f"{name}_bucket", **labels, le="+Inf")
    await client.get("/items/7")
    assert sample(f"{name}_count", **labels) == count_before + 1
    assert sample(f"{name}_bucket", **labels, le="+Inf") == inf_before + 1
    families = text_string_to_metric_families((await client.get("/metrics")).text)
    family = next(f for f in families if f.name == name)
    bounds = {
        float(s.labels["le"])
        for s in family.samples
        if s.name.endswith("_bucket") and s.labels["route"] == "/items/{item_id}"
    }
    assert bounds == {*metrics.LATENCY_BUCKETS, float("inf")}
    assert sample(f"{name}_sum", **labels) > 0


async def test_metrics_endpoint_speaks_prometheus_text_and_openmetrics(client: httpx.AsyncClient) -> None:
    plain = await client.get("/metrics")
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "x-request-id" not in plain.headers, "served before the request-id middleware"
    assert 'rag_service_info{service="metricstest",version="unknown"} 1.0' in plain.text
    openmetrics = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")


async def test_metrics_endpoint_is_not_traced(client: httpx.AsyncClient) -> None:
    exporter = InMemorySpanExporter()
    setup_tracing("test", extra_processor=SimpleSpanProcessor(exporter))
    await client.get("/metrics")
    await client.get("/items/5")
    names = {span.name for span in exporter.get_finished_spans()}
    assert not any("/metrics" in name for name in names), names
    assert any("/items/{item_id}" in name for name in names), names


async def test_streaming_responses_stream_through_and_are_timed_to_the_last_chunk() -> None:
    # httpx's ASGITransport collects the whole body before returning (encode/httpx#2186), so this test
    # drives the ASGI app itself and watches each message leave the middleware stack.
    app = create_service_app(
        service="metricstest", settings=ServiceSettings(), lifespan=lifespan, routers=[router]
    )
    stream_gate.clear()
    labels = {"method": "GET", "route": "/stream", "status": "200"}
    before = sample("http_requests_total", **labels)
    sent: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    disconnected = asyncio.Event()

    async def receive() -> dict[str, object]:
        if not getattr(receive, "done", False):
            receive.done = True  # type: ignore[attr-defined]
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        await sent.put(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/stream",
        "raw_path": b"/stream",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 1234),
        "server": ("test", 80),
    }
    task = asyncio.create_task(app(scope, receive, send))
    try:
        start = await asyncio.wait_for(sent.get(), timeout=5)
        assert start["type"] == "http.response.start"
        first = await asyncio.wait_for(sent.get(), timeout=5)
        # The first chunk left the stack while the handler still waits: nothing buffered the stream.
        assert first["body"] == b"first\n"
        assert first.get("more_body") is True
        assert sample("http_requests_total", **labels) == before, "recorded only once the stream ends"
        stream_gate.set()
        second = await asyncio.wait_for(sent.get(), timeout=5)
        assert second["body"] == b"second\n"
        await asyncio.wait_for(task, timeout=5)
    finally:
        disconnected.set()
        stream_gate.set()
        await asyncio.wait_for(task, timeout=5)
    assert sample("http_requests_total", **labels) == before + 1


def test_registry_helpers_return_the_same_metric_for_the_same_name() -> None:
    registry = CollectorRegistry()
    first = metrics.counter("widget_events", "Widgets.", ("kind",), registry=registry)
    assert metrics.counter("widget_events", "Widgets.", ("kind",), registry=registry) is first
    first.labels(kind="a").inc(2)
    assert registry.get_sample_value("widget_events_total", {"kind": "a"}) == 2
    with pytest.raises(ValueError, match="already exists"):
        metrics.gauge("widget_events", "Widgets.", ("kind",), registry=registry)
    with pytest.raises(ValueError, match="already exists"):
        metrics.counter("widget_events", "Widgets.", ("other",), registry=registry)
    hist = metrics.histogram("widget_seconds", "Widget time.", buckets=(0.1, 1.0), registry=registry)
    hist.observe(0.5)
    assert registry.get_sample_value("widget_seconds_bucket", {"le": "0.1"}) == 0
    assert registry.get_sample_value("widget_seconds_bucket", {"le": "1.0"}) == 1


def test_ready_made_domain_metrics_record_what_their_helpers_say() -> None:
    hits = sample("rag_cache_lookups_total", cache="embeddings", result="hit")
    misses = sample("rag_cache_lookups_total", cache="embeddings", result="miss")
    metrics.record_cache_lookup("embeddings", hit=True)
    metrics.record_cache_lookup("embeddings", hit=False)
    assert sample("rag_cache_lookups_total", cache="embeddings", result="hit") == hits + 1
    assert sample("rag_cache_lookups_total", cache="embeddings", result="miss") == misses + 1

    tokens_in = sample("rag_tokens_total", model="m", direction="in")
    tokens_out = sample("rag_tokens_total", model="m", direction="out")
    metrics.record_tokens("m", prompt=12, completion=5)
    assert sample("rag_tokens_total", model="m", direction="in") == tokens_in + 12
    assert sample("rag_tokens_total", model="m", direction="out") == tokens_out + 5

    metrics.set_breaker_state("llm:m", "open")
    assert sample("rag_circuit_breaker_state", breaker="llm:m") == 2
    metrics.set_breaker_state("llm:m", "closed")
    assert sample("rag_circuit_breaker_state", breaker="llm:m") == 0

    ttft = sample("rag_time_to_first_token_seconds_count", model="m")
    metrics.TIME_TO_FIRST_TOKEN.labels(model="m").observe(0.3)
    assert sample("rag_time_to_first_token_seconds_count", model="m") == ttft + 1
    assert sample("rag_time_to_first_token_seconds_bucket", model="m", le="0.25") <= ttft


def test_service_version_comes_from_the_package_metadata() -> None:
    assert service_version("common") != "unknown"
    assert service_version("no-such-service") == "unknown"
