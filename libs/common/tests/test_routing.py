"""`LeanRoute` answers exactly as FastAPI's own handling does, and skips it for valid requests."""

from __future__ import annotations

from typing import Annotated

import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from rag_common.routing import LeanRoute


class Question(BaseModel):
    text: str = Field(min_length=1)
    top_k: int = 4


async def caller(request: Request) -> str:
    key = request.headers.get("x-key")
    if key != "good":
        raise HTTPException(401, "bad key")
    return key


def build(route_class: type[APIRoute]) -> FastAPI:
    router = APIRouter(prefix="/v1", route_class=route_class)

    @router.post("/ask")
    async def ask(body: Question, who: Annotated[str, Depends(caller)]) -> Response:
        return Response(f"{who}:{body.text}:{body.top_k}".encode(), media_type="text/plain")

    @router.post("/search")
    async def search(body: Question, limit: int = 3) -> Response:  # a query parameter: not lean
        return Response(f"{body.text}:{limit}".encode(), media_type="text/plain")

    app = FastAPI()
    app.include_router(router)
    return app


REQUESTS = [
    ("valid", b'{"text": "etna", "top_k": 2}', {"content-type": "application/json", "x-key": "good"}),
    ("charset", b'{"text": "etna"}', {"content-type": "application/json; charset=utf-8", "x-key": "good"}),
    ("bad key, valid body", b'{"text": "etna"}', {"content-type": "application/json", "x-key": "bad"}),
    ("bad key, invalid body", b'{"text": ""}', {"content-type": "application/json", "x-key": "bad"}),
    ("invalid field", b'{"text": "", "top_k": "x"}', {"content-type": "application/json", "x-key": "good"}),
    ("not JSON", b'{"text": ', {"content-type": "application/json", "x-key": "good"}),
    ("empty", b"", {"content-type": "application/json", "x-key": "good"}),
    ("JSON list", b"[1, 2]", {"content-type": "application/json", "x-key": "good"}),
    ("text/plain", b'{"text": "etna"}', {"content-type": "text/plain", "x-key": "good"}),
    ("no content type", b'{"text": "etna"}', {"x-key": "good"}),
    ("+json", b'{"text": "etna"}', {"content-type": "application/vnd.api+json", "x-key": "good"}),
]


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts FastAPI's dependency solving: the generic handler's work."""
    calls: list[str] = []
    original = fastapi.routing.solve_dependencies

    async def counting(*args: object, **kwargs: object) -> object:
        calls.append("solved")
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return calls


@pytest.mark.parametrize(("case", "content", "headers"), REQUESTS, ids=[r[0] for r in REQUESTS])
async def test_every_request_is_answered_as_fastapi_answers_it(
    case: str, content: bytes, headers: dict[str, str]
) -> None:
    answers = []
    for route_class in (APIRoute, LeanRoute):
        transport = httpx.ASGITransport(app=build(route_class))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post("/v1/ask", content=content, headers=headers)
        answers.append((response.status_code, response.headers.get("content-type"), response.content))
    assert answers[0] == answers[1], case


async def test_a_valid_request_skips_fastapis_handling_and_others_take_it(solved: list[str]) -> None:
    transport = httpx.ASGITransport(app=build(LeanRoute))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        valid = await client.post("/v1/ask", json={"text": "etna"}, headers={"x-key": "good"})
        assert (valid.text, solved) == ("good:etna:4", [])
        invalid = await client.post("/v1/ask", json={"text": ""}, headers={"x-key": "good"})
        assert invalid.status_code == 422
        assert solved == ["solved"]
        other_shape = await client.post("/v1/search?limit=7", json={"text": "etna"})
    assert other_shape.text == "etna:7"
    assert solved == ["solved", "solved"], "a route of another shape keeps FastAPI's handling"


async def test_dependency_overrides_still_apply(solved: list[str]) -> None:
    app = build(LeanRoute)
    app.dependency_overrides[caller] = lambda: "overridden"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/v1/ask", json={"text": "etna"})
    assert response.text == "overridden:etna:4"
    assert solved == ["solved"]


def test_the_openapi_is_the_same_and_only_fitting_routes_are_lean() -> None:
    assert build(LeanRoute).openapi() == build(APIRoute).openapi()
    router = APIRouter(route_class=LeanRoute)

    @router.post("/ask")
    async def ask(body: Question, who: Annotated[str, Depends(caller)]) -> Response:
        return Response(who)

    @router.post("/search")
    async def search(body: Question, limit: int = 3) -> Response:
        return Response(str(limit))

    @router.post("/model")
    async def model(body: Question) -> Question:  # a response model: FastAPI serialises it
        return body

    assert [getattr(route, "is_lean", None) for route in router.routes] == [True, False, False]
