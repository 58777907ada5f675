"""Internal services refuse callers without the shared token; the gateway's clients carry it."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic_settings import SettingsConfigDict

from rag_common import middleware
from rag_common.app import MissingInternalToken, create_service_app
from rag_common.http import ServiceClient
from rag_common.settings import ServiceSettings

TOKEN = "s3cret-internal-token"
router = APIRouter()


@router.post("/v1/echo")
async def echo(request: Request) -> dict[str, str]:
    return {"token": request.headers.get("x-internal-token", "")}


@router.get("/v1/stream")
async def stream() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"one\n"
        yield b"two\n"

    return StreamingResponse(chunks(), media_type="text/plain")


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


def build(settings: ServiceSettings, *, public: bool = False) -> FastAPI:
    return create_service_app(
        service="tokentest", settings=settings, lifespan=lifespan, routers=[router], public=public
    )


def http(app: FastAPI, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc", headers=headers)


@pytest.fixture
def internal_app() -> FastAPI:
    return build(ServiceSettings(internal_token=TOKEN))


@pytest.mark.parametrize("headers", [{}, {"X-Internal-Token": "wrong"}, {"X-Internal-Token": ""}])
async def test_a_request_without_the_right_token_is_refused_with_401_problem(
    internal_app: FastAPI, headers: dict[str, str]
) -> None:
    async with http(internal_app, headers) as client:
        response = await client.post("/v1/echo", json={})

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Internal-Token")
    assert response.headers["x-request-id"]
    problem = response.json()
    assert problem["type"].endswith("/internal-token")
    assert problem["instance"] == "/v1/echo"
    assert problem["request_id"] == response.headers["x-request-id"]
    assert TOKEN not in response.text


async def test_the_right_token_goes_through(internal_app: FastAPI) -> None:
    async with http(internal_app, {"X-Internal-Token": TOKEN}) as client:
        response = await client.post("/v1/echo", json={})

    assert response.status_code == 200
    assert response.json() == {"token": TOKEN}


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_probes_and_metrics_stay_open(internal_app: FastAPI, path: str) -> None:
    async with http(internal_app) as client:
        response = await client.get(path)

    assert response.status_code == 200


async def test_the_token_is_compared_in_constant_time(
    internal_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(given: bytes, expected: bytes) -> bool:
        compared.append((given, expected))
        return real(given, expected)

    monkeypatch.setattr(middleware.hmac, "compare_digest", spy)
    async with http(internal_app, {"X-Internal-Token": "guess"}) as client:
        response = await client.post("/v1/echo", json={})

    assert response.status_code == 401
    assert compared == [(b"guess", TOKEN.encode())]


async def test_the_public_gateway_needs_no_token() -> None:
    app = build(ServiceSettings(internal_token=TOKEN), public=True)
    async with http(app) as client:
        response = await client.post("/v1/echo", json={})

    assert response.status_code == 200


@pytest.mark.parametrize("token", [None, ""])
async def test_without_a_token_configured_nothing_is_required(token: str | None) -> None:
    async with http(build(ServiceSettings(internal_token=token))) as client:
        response = await client.post("/v1/echo", json={})

    assert response.status_code == 200


@pytest.mark.parametrize("public", [False, True])
def test_production_refuses_to_start_without_a_token(public: bool) -> None:
    with pytest.raises(MissingInternalToken, match="RAG_INTERNAL_TOKEN is not set"):
        build(ServiceSettings(environment="production"), public=public)


def test_production_starts_with_a_token() -> None:
    assert build(ServiceSettings(environment="production", internal_token=TOKEN))


class PrefixedSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TOKENTEST_")


def test_every_service_reads_the_one_unprefixed_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_INTERNAL_TOKEN", TOKEN)

    token = PrefixedSettings().internal_token

    assert token is not None
    assert token.get_secret_value() == TOKEN
    assert TOKEN not in repr(PrefixedSettings())


async def test_a_client_with_the_token_is_let_in_for_calls_and_streams(internal_app: FastAPI) -> None:
    settings = ServiceSettings(internal_token=TOKEN)
    client = ServiceClient(
        "tokentest",
        "http://svc",
        internal_token=settings.internal_token,
        transport=httpx.ASGITransport(app=internal_app),
    )
    try:
        answer = await client.call_raw("POST", "/v1/echo", body=b"{}")
        response, chunks = await client.stream_raw("GET", "/v1/stream")
        streamed = b"".join([chunk async for chunk in chunks])
    finally:
        await client.aclose()

    assert answer.json() == {"token": TOKEN}
    assert response.status_code == 200
    assert streamed == b"one\ntwo\n"
