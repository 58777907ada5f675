"""The requests waiting for a local model are visible on /metrics as rag_queue_depth."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from rag_llm.main import create_app
from rag_llm.settings import Settings

from .fakes import GatedBackend
from .harness import serve
from .test_queue import BODY, until


async def queue_depth(client: httpx.AsyncClient, queue: str) -> float | None:
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "rag_queue_depth" and sample.labels == {"queue": queue}:
                return sample.value
    return None


async def test_metrics_show_how_many_requests_wait_for_the_model(settings: Settings) -> None:
    backend = GatedBackend()
    app = create_app(settings.model_copy(update={"max_queue": 4}), backend=backend)
    async with serve(app) as client:
        assert await queue_depth(client, "llm:gated") == 0
        admitted = [asyncio.create_task(client.post("/v1/chat/completions", json=BODY)) for _ in range(3)]
        await until(lambda: backend.arrived == 3)

        waiting = await queue_depth(client, "llm:gated")
        backend.opened.set()
        answered = await asyncio.gather(*admitted)
        after = await queue_depth(client, "llm:gated")

    assert waiting == 2, "one generates, two wait"
    assert [r.status_code for r in answered] == [200, 200, 200]
    assert after == 0
