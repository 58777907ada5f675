"""The bounded wait queue in front of a local model: overload gets a 503, not an ever-longer line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rag_llm.main import create_app
from rag_llm.settings import Settings

from .fakes import GatedBackend
from .harness import serve

BODY = {"messages": [{"role": "user", "content": "hi"}]}


async def until(condition: Callable[[], bool], *, timeout_s: float = 10.0) -> None:
    """Poll `condition` while other tasks run, until it holds or the timeout passes."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.001)


async def test_a_full_queue_answers_503_with_retry_after(settings: Settings) -> None:
    backend = GatedBackend()
    app = create_app(settings.model_copy(update={"max_queue": 2}), backend=backend)
    async with serve(app) as client:
        # One generates, two wait: the queue is full.
        admitted = [asyncio.create_task(client.post("/v1/chat/completions", json=BODY)) for _ in range(3)]
        await until(lambda: backend.arrived == 3)

        refused = await client.post("/v1/chat/completions", json=BODY)
        streamed = await client.post("/v1/chat/completions", json=BODY | {"stream": True})
        backend.opened.set()
        answered = await asyncio.gather(*admitted)
        after = await client.post("/v1/chat/completions", json=BODY)

    for response in (refused, streamed):
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "1"
        assert response.json()["type"].endswith("/queue-full")
        assert response.json()["model"] == "gated"
    assert backend.arrived == 4, "refused requests never reached the model"
    assert [r.status_code for r in answered] == [200, 200, 200]
    assert after.status_code == 200, "places are given back when requests finish"


async def test_a_stream_holds_its_place_until_it_ends(settings: Settings) -> None:
    backend = GatedBackend()
    backend.opened.set()
    app = create_app(settings.model_copy(update={"max_queue": 0}), backend=backend)
    async with serve(app) as client:
        for _ in range(3):
            response = await client.post("/v1/chat/completions", json=BODY | {"stream": True})
            assert response.status_code == 200, "each finished stream gave its single place back"
