from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from rag_common.app import create_service_app
from rag_common.errors import NotFound, UpstreamUnavailable
from rag_common.settings import ServiceSettings

router = APIRouter()


class Body(BaseModel):
    name: str


@router.get("/missing")
async def missing() -> None:
    raise NotFound("Collection 'x' does not exist.")


@router.get("/down")
async def down() -> None:
    raise UpstreamUnavailable("embedding")


@router.get("/clashing")
async def clashing() -> None:
    raise NotFound("Job 'j' does not exist.", extra={"status": "running", "request_id": "forged", "job": "j"})


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals")


@router.post("/echo")
async def echo(body: Body) -> Body:
    return body


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


@pytest.fixture
def client() -> httpx.AsyncClient:
    app = create_service_app(
        service="test",
        settings=ServiceSettings(max_body_bytes=1000, max_upload_bytes=5000),
        lifespan=lifespan,
        routers=[router],
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["request_id"]
    return body


async def test_domain_error_is_problem_json_with_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/missing", headers={"X-Request-ID": "req-123"})
    body = assert_problem(response, 404)
    assert body["detail"] == "Collection 'x' does not exist."
    assert body["request_id"] == "req-123" == response.headers["x-request-id"]
    assert body["instance"] == "/missing"


async def test_upstream_unavailable_names_the_service_and_suggests_retry(client: httpx.AsyncClient) -> None:
    response = await client.get("/down")
    body = assert_problem(response, 503)
    assert body["service"] == "embedding"
    assert response.headers["retry-after"] == "1"


async def test_unexpected_error_hides_internals(client: httpx.AsyncClient) -> None:
    response = await client.get("/boom")
    body = assert_problem(response, 500)
    assert "secret" not in response.text
    assert "request id" in str(body["detail"])


async def test_validation_error_names_the_field(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.post("/echo", json={}), 422)
    assert str(body["detail"]).startswith("name:")
    assert body["errors"][0]["loc"] == ["body", "name"]


async def test_malformed_json_is_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/echo", content=b"{oops", headers={"Content-Type": "application/json"})
    assert_problem(response, 422)


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/nowhere"), 404)


async def test_oversized_body_is_413_by_declared_length(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.post("/echo", json={"name": "x" * 2000}), 413)
    assert "1000 bytes" in str(body["detail"])


async def test_oversized_streamed_body_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b'{"name": "' + b"x" * 300 + b'"}'

    assert_problem(await client.post("/echo", content=chunks()), 413)


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    # No package rag-test is installed, so the version falls back to "unknown".
    assert (await client.get("/healthz")).json() == {"status": "ok", "version": "unknown"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_multipart_uploads_get_their_own_larger_limit(client: httpx.AsyncClient) -> None:
    within = await client.post("/echo", files={"file": ("a.txt", b"x" * 3000)})
    assert within.status_code == 422, "past the JSON limit, within the upload limit: reaches the route"
    body = assert_problem(await client.post("/echo", files={"file": ("a.txt", b"x" * 6000)}), 413)
    assert "5000 bytes" in str(body["detail"])


async def test_extra_members_never_replace_the_standard_ones(client: httpx.AsyncClient) -> None:
    response = await client.get("/clashing")
    problem = assert_problem(response, 404)
    assert problem["status"] == 404
    assert problem["request_id"] == response.headers["x-request-id"]
    assert problem["job"] == "j"
