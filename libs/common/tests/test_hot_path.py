"""What the shared app costs per request when tracing is off, and what it logs per upstream call."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace

from rag_common.app import create_service_app
from rag_common.http import ServiceClient
from rag_common.logs import configure_logging
from rag_common.settings import ServiceSettings
from rag_common.telemetry import setup_tracing, tracer


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


def build(monkeypatch: pytest.MonkeyPatch, sdk_disabled: str | None) -> FastAPI:
    if sdk_disabled is None:
        monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    else:
        monkeypatch.setenv("OTEL_SDK_DISABLED", sdk_disabled)
    return create_service_app(service="hot", settings=ServiceSettings(), lifespan=lifespan, routers=[])


@pytest.mark.parametrize(
    ("value", "instrumented"), [(None, True), ("false", True), ("true", False), ("TRUE", False)]
)
def test_apps_and_clients_are_instrumented_unless_the_otel_sdk_is_disabled(
    monkeypatch: pytest.MonkeyPatch, value: str | None, instrumented: bool
) -> None:
    app = build(monkeypatch, value)
    client = ServiceClient("up", "http://up", tracer_provider=setup_tracing("hot"))
    assert app._native_telemetry.enabled() is instrumented, "FastAPI's own tracing follows the switch"
    assert getattr(client._client, "_is_instrumented_by_opentelemetry", False) is instrumented


async def test_a_disabled_sdk_still_serves_with_request_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    app = build(monkeypatch, "true")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hot") as client:
        response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "abc-123"


@pytest.mark.parametrize(
    ("level", "info", "warning"), [("INFO", False, True), ("ERROR", False, False), ("DEBUG", True, True)]
)
def test_httpx_logs_a_line_per_request_only_at_debug(level: str, info: bool, warning: bool) -> None:
    try:
        configure_logging("hot", level)
        assert logging.getLogger("httpx").isEnabledFor(logging.INFO) is info
        assert logging.getLogger("httpx").isEnabledFor(logging.WARNING) is warning
    finally:
        configure_logging("hot", "INFO")


def test_an_untraced_process_gets_spans_that_record_nothing_and_nest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    untraced = tracer("hot")
    with untraced.start_as_current_span("outer") as outer, untraced.start_as_current_span("inner") as inner:
        inner.set_attribute("ignored", True)
        assert not outer.is_recording()
        assert not inner.get_span_context().is_valid
    assert not trace.get_current_span().get_span_context().is_valid


def test_a_traced_process_gets_the_sdk_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    setup_tracing("hot")
    with tracer("hot").start_as_current_span("real") as span:
        assert span.is_recording()
