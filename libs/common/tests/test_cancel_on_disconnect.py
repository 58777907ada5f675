"""`CancelOnDisconnectMiddleware` on a real uvicorn server: a caller that hangs up stops its work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from rag_common.middleware import CancelOnDisconnectMiddleware
from rag_devstack.processes import free_port


@dataclass
class Work:
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)


def build_app(work: Work) -> FastAPI:
    app = FastAPI()

    @app.post("/work")
    async def slow(body: dict[str, float]) -> dict[str, str]:
        work.started.set()
        try:
            await asyncio.sleep(body["seconds"])
        except asyncio.CancelledError:
            work.cancelled.set()
            raise
        work.finished.set()
        return {"done": "yes"}

    app.add_middleware(CancelOnDisconnectMiddleware)
    return app


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Work]]:
    work = Work()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(work), host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", work
    finally:
        server.should_exit = True
        await serving


async def test_a_caller_that_hangs_up_cancels_the_work_it_asked_for(served: tuple[str, Work]) -> None:
    url, work = served
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=0.3)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"{url}/work", json={"seconds": 30})
    await asyncio.wait_for(work.cancelled.wait(), 5)
    assert work.started.is_set()
    assert not work.finished.is_set()


async def test_a_caller_that_waits_gets_its_answer(served: tuple[str, Work]) -> None:
    url, work = served
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(f"{url}/work", json={"seconds": 0.2})
    assert response.status_code == 200
    assert response.json() == {"done": "yes"}
    assert work.finished.is_set()
    assert not work.cancelled.is_set()


async def test_a_body_that_never_validates_still_gets_its_422(served: tuple[str, Work]) -> None:
    url, work = served
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(f"{url}/work", json={"seconds": "soon"})
    assert response.status_code == 422
    assert not work.started.is_set()
