from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from rag_common.app import create_service_app
from rag_common.context import set_request_id
from rag_common.errors import NotFound, ServiceUnavailable, UpstreamError, UpstreamUnavailable
from rag_common.http import ServiceClient
from rag_common.settings import ServiceSettings
from rag_devstack.processes import free_port


class Echo(BaseModel):
    request_id: str | None
    attempts: int


def build_upstream() -> tuple[FastAPI, dict[str, int]]:
    attempts = {"flaky": 0}
    router = APIRouter()

    @router.post("/flaky")
    async def flaky(request: Request) -> Echo:
        attempts["flaky"] += 1
        if attempts["flaky"] < 3:
            raise ServiceUnavailable("warming up")
        return Echo(request_id=request.headers.get("x-request-id"), attempts=attempts["flaky"])

    @router.get("/missing")
    async def missing() -> None:
        raise NotFound("Collection 'abc' does not exist.", extra={"collection": "abc"})

    @router.get("/cascade")
    async def cascade() -> None:
        raise UpstreamUnavailable("embedding")

    @router.get("/events")
    async def events() -> StreamingResponse:
        async def body() -> AsyncIterator[str]:
            for i in range(3):
                yield f"data: {i}\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    app = create_service_app(
        service="upstream", settings=ServiceSettings(), lifespan=lifespan, routers=[router]
    )
    return app, attempts


def client_for(app: FastAPI, retries: int = 2) -> ServiceClient:
    return ServiceClient(
        "upstream",
        "http://upstream",
        retries=retries,
        backoff_s=(0.0,),
        transport=httpx.ASGITransport(app=app),
    )


async def test_idempotent_call_is_retried_on_503_and_carries_request_id() -> None:
    app, _attempts = build_upstream()
    set_request_id("abc-123")
    result = await client_for(app).call("POST", "/flaky", Echo, body={}, idempotent=True)
    assert result.attempts == 3
    assert result.request_id == "abc-123"


async def test_non_idempotent_call_is_not_retried_on_503() -> None:
    app, attempts = build_upstream()
    with pytest.raises(UpstreamUnavailable) as caught:
        await client_for(app).call("POST", "/flaky", Echo, body={})
    assert attempts["flaky"] == 1
    assert caught.value.service == "upstream"


async def test_upstream_4xx_passes_through_with_detail_and_extras() -> None:
    app, _ = build_upstream()
    with pytest.raises(UpstreamError) as caught:
        await client_for(app).call("GET", "/missing", Echo)
    assert caught.value.status_code == 404
    assert caught.value.detail == "Collection 'abc' does not exist."
    assert caught.value.extra["collection"] == "abc"


async def test_upstream_503_keeps_the_name_of_the_service_that_is_down() -> None:
    app, _ = build_upstream()
    with pytest.raises(UpstreamUnavailable) as caught:
        await client_for(app, retries=0).call("GET", "/cascade", Echo)
    assert caught.value.service == "embedding"


async def test_connection_refused_becomes_upstream_unavailable() -> None:
    client = ServiceClient("retrieval", f"http://127.0.0.1:{free_port()}", retries=1, backoff_s=(0.0,))
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.call("GET", "/anything", Echo, idempotent=True)
    assert caught.value.service == "retrieval"
    assert caught.value.status_code == 503
    await client.aclose()


async def test_sse_stream_yields_events_in_order() -> None:
    app, _ = build_upstream()
    events = await client_for(app).stream_events("GET", "/events", body={})
    assert [event.data async for event in events] == ["0", "1", "2"]
