"""Requests waiting for the dynamic batcher are visible on /metrics as rag_queue_depth."""

from __future__ import annotations

import asyncio
import threading

import httpx
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from rag_embedding.main import create_app
from rag_embedding.settings import Settings


class BlockingEmbedder:
    """A real, tiny embedder ([len(text)]) whose model calls wait until `release` is set."""

    model_name = "all-MiniLM-L6-v2"
    dimension = 1

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.started.set()
        self.release.wait(timeout=10)
        return [[float(len(t))] for t in texts]

    def token_counts(self, texts: list[str]) -> list[int]:
        return [1 for _ in texts]


async def queue_depth(client: httpx.AsyncClient) -> float | None:
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "rag_queue_depth" and sample.labels == {"queue": "embedding"}:
                return sample.value
    return None


async def depth_reaches(
    client: httpx.AsyncClient, expected: float, *, timeout_s: float = 10.0
) -> float | None:
    """Poll /metrics until the queue depth is `expected` (or the timeout passes); the last value seen."""
    depth = await queue_depth(client)
    async with asyncio.timeout(timeout_s):
        while depth != expected:
            await asyncio.sleep(0.005)
            depth = await queue_depth(client)
    return depth


async def test_metrics_show_the_requests_waiting_for_a_batch() -> None:
    embedder = BlockingEmbedder()
    # One model call at a time, one text per batch: the first request occupies the model, the next
    # three wait in the queue.
    app = create_app(Settings(batch_max_size=1, batch_max_wait_ms=0, model_workers=1), embedder=embedder)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://embedding") as client:
            assert await queue_depth(client) == 0
            texts = ["a", "bb", "ccc", "dddd"]
            posts = [client.post("/v1/embeddings", json={"input": text}) for text in texts]
            first = asyncio.create_task(posts[0])
            await asyncio.to_thread(embedder.started.wait, 10)
            rest = [asyncio.create_task(post) for post in posts[1:]]

            assert await depth_reaches(client, 3) == 3
            embedder.release.set()
            answers = await asyncio.gather(first, *rest)
            assert await depth_reaches(client, 0) == 0

    assert [a.json()["data"][0]["embedding"] for a in answers] == [[1.0], [2.0], [3.0], [4.0]]
