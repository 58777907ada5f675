from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter, ValidationError
from pydantic_settings import SettingsConfigDict

from rag_common.app import create_service_app
from rag_common.deprecation import DeprecatedRoute, deprecate
from rag_common.settings import ServiceSettings

DEPRECATED_AT = datetime(2026, 12, 1, tzinfo=UTC)
SUNSET = datetime(2027, 12, 1, tzinfo=UTC)
ROUTES = [
    DeprecatedRoute(
        path="/v1/rag",
        deprecated_at=DEPRECATED_AT,
        sunset=SUNSET,
        successor="/v2/rag/query",
        policy="https://docs.example/api-versioning",
    )
]
router = APIRouter()


@router.post("/v1/rag/query")
async def old_query() -> dict[str, str]:
    return {"answer": "old"}


@router.get("/v1/rag/stream")
async def old_stream() -> StreamingResponse:
    def lines() -> Iterator[str]:
        yield "data: 1\n\n"

    return StreamingResponse(lines(), media_type="text/event-stream")


@router.post("/v2/rag/query")
async def new_query() -> dict[str, str]:
    return {"answer": "new"}


@router.get("/v1/ragged")
async def lookalike(response: Response) -> dict[str, str]:
    response.headers["Link"] = '</v1/other>; rel="next"'
    return {}


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


@pytest.fixture
def app() -> FastAPI:
    app = create_service_app(service="test", settings=ServiceSettings(), lifespan=lifespan, routers=[router])
    deprecate(app, ROUTES)
    return app


@pytest.fixture
def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_a_deprecated_route_answers_with_deprecation_sunset_and_successor(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/rag/query")
    assert response.json() == {"answer": "old"}
    assert response.headers["Deprecation"] == "@1796083200"
    assert response.headers["Sunset"] == "Wed, 01 Dec 2027 00:00:00 GMT"
    assert response.headers["Link"] == (
        '</v2/rag/query>; rel="successor-version", <https://docs.example/api-versioning>; rel="deprecation"'
    )


async def test_errors_and_streams_of_a_deprecated_route_carry_the_headers(client: httpx.AsyncClient) -> None:
    refused = await client.get("/v1/rag/query")
    assert refused.status_code == 405
    assert "Sunset" in refused.headers
    streamed = await client.get("/v1/rag/stream")
    assert streamed.text == "data: 1\n\n"
    assert streamed.headers["Deprecation"] == "@1796083200"


async def test_other_routes_are_left_alone(client: httpx.AsyncClient) -> None:
    for response in (
        await client.post("/v2/rag/query"),
        await client.get("/v1/ragged"),
        await client.get("/healthz"),
    ):
        assert response.status_code == 200
        assert "Deprecation" not in response.headers
        assert "Sunset" not in response.headers
    assert (await client.get("/v1/ragged")).headers["Link"] == '</v1/other>; rel="next"'


def test_the_openapi_document_marks_deprecated_operations(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    assert paths["/v1/rag/query"]["post"]["deprecated"] is True
    assert paths["/v1/rag/stream"]["get"]["deprecated"] is True
    assert "deprecated" not in paths["/v2/rag/query"]["post"]
    assert "deprecated" not in paths["/v1/ragged"]["get"]


def test_the_table_reads_from_json_as_a_setting_would() -> None:
    table = '[{"path": "/v1/rag", "deprecated_at": "2026-12-01T00:00:00Z", "sunset": "2027-12-01T00:00:00Z"}]'
    routes = TypeAdapter(list[DeprecatedRoute]).validate_json(table)
    assert routes[0].headers() == [
        ("Deprecation", "@1796083200"),
        ("Sunset", "Wed, 01 Dec 2027 00:00:00 GMT"),
    ]


@pytest.mark.parametrize(
    "entry",
    [
        {"path": "/v1/rag", "deprecated_at": "2027-12-01T00:00:00Z", "sunset": "2026-12-01T00:00:00Z"},
        {"path": "/v1/rag", "deprecated_at": "2026-12-01T00:00:00", "sunset": "2027-12-01T00:00:00Z"},
        {"path": "v1/rag", "deprecated_at": "2026-12-01T00:00:00Z", "sunset": "2027-12-01T00:00:00Z"},
    ],
    ids=["sunset-before-deprecation", "naive-date", "relative-path"],
)
def test_an_invalid_entry_is_refused(entry: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        DeprecatedRoute.model_validate(entry)


class EnvSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEPTEST_")


@asynccontextmanager
async def _no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


async def test_the_setting_deprecates_routes_of_any_service(monkeypatch: pytest.MonkeyPatch) -> None:
    table = [{"path": "/v1/old", "deprecated_at": "2026-12-01T00:00:00Z", "sunset": "2027-12-01T00:00:00Z"}]
    monkeypatch.setenv("DEPTEST_DEPRECATED_ROUTES", json.dumps(table))
    old_router = APIRouter()

    @old_router.get("/v1/old/thing")
    async def thing() -> dict[str, str]:
        return {"ok": "yes"}

    app = create_service_app(
        service="deptest", settings=EnvSettings(), lifespan=_no_lifespan, routers=[old_router]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        old, health = await client.get("/v1/old/thing"), await client.get("/healthz")
    assert old.status_code == 200
    assert old.headers["deprecation"] == "@1796083200"
    assert old.headers["sunset"] == "Wed, 01 Dec 2027 00:00:00 GMT"
    assert "deprecation" not in health.headers
    assert app.openapi()["paths"]["/v1/old/thing"]["get"]["deprecated"] is True
