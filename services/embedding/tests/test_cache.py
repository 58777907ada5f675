"""The vector cache against a real Redis server: hits, isolation between models, outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import redis
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY

from rag_devstack.processes import free_port
from rag_devstack.redis_server import RedisServer, start_redis
from rag_embedding.cache import CACHE_NAME
from rag_embedding.main import create_app
from rag_embedding.settings import Settings

from .fakes import CountingEmbedder


@asynccontextmanager
async def serving(embedder: CountingEmbedder, redis_url: str | None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(redis_url=redis_url, redis_timeout_s=0.2), embedder=embedder)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://embedding") as client:
            yield client


async def embed(client: httpx.AsyncClient, texts: list[str]) -> dict[str, object]:
    response = await client.post("/v1/embeddings", json={"input": texts})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def lookups(result: str) -> float:
    value = REGISTRY.get_sample_value("rag_cache_lookups_total", {"cache": CACHE_NAME, "result": result})
    return value or 0.0


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    return redis_server.url


async def test_a_repeated_text_is_answered_from_the_cache_with_identical_vectors(redis_url: str) -> None:
    embedder = CountingEmbedder("counting")
    hits, misses = lookups("hit"), lookups("miss")
    async with serving(embedder, redis_url) as client:
        first = await embed(client, ["green tea", "black coffee with milk"])
        again = await embed(client, ["black coffee with milk", "rooibos", "green tea"])
    # Each miss once; with several model workers the misses may be encoded in either order.
    assert sorted(embedder.embedded) == ["black coffee with milk", "green tea", "rooibos"]
    data = {item["index"]: item["embedding"] for item in again["data"]}  # type: ignore[attr-defined]
    first_data = {item["index"]: item["embedding"] for item in first["data"]}  # type: ignore[attr-defined]
    assert data[0] == first_data[1]
    assert data[2] == first_data[0]
    assert again["usage"] == {"prompt_tokens": 4 + 1 + 2, "completion_tokens": 0, "total_tokens": 7}
    assert (lookups("hit") - hits, lookups("miss") - misses) == (2, 3)


async def test_models_never_share_cache_entries(redis_url: str) -> None:
    async with serving(CountingEmbedder("model-a", scale=1.0), redis_url) as client:
        from_a = await embed(client, ["shared text"])
    other = CountingEmbedder("model-b", scale=2.0)
    async with serving(other, redis_url) as client:
        from_b = await embed(client, ["shared text"])
    assert other.embedded == ["shared text"]
    assert from_a["data"][0]["embedding"] == [11.0, 1.0]  # type: ignore[index]
    assert from_b["data"][0]["embedding"] == [11.0, 2.0]  # type: ignore[index]
    with redis.Redis.from_url(redis_url) as client:
        (key_a,) = client.keys("rag:embedding:model-a:*:norm:*")
        (key_b,) = client.keys("rag:embedding:model-b:*:norm:*")
        assert len(client.get(key_a)) == len(client.get(key_b)) == 4 + 2 * 4  # uint32 tokens, 2 float32


async def test_requests_still_succeed_after_redis_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_redis(free_port(), tmp_path / "data", tmp_path / "redis.log")
    embedder = CountingEmbedder("counting")
    try:
        async with serving(embedder, server.url) as client:
            await embed(client, ["cached while up"])
            server.stop()
            body = await embed(client, ["cached while up", "new"])
    finally:
        if server.process.poll() is None:
            server.stop()
    assert body["data"][1]["embedding"] == [3.0, 1.0]  # type: ignore[index]
    assert embedder.embedded[0] == "cached while up"
    assert sorted(embedder.embedded[1:]) == ["cached while up", "new"]  # both misses, in either order
    assert "embedding cache bypassed, Redis unreachable" in capsys.readouterr().out


async def test_a_redis_that_never_answers_costs_at_most_the_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with serving(CountingEmbedder("counting"), f"redis://127.0.0.1:{port}/0") as client:
            started = time.perf_counter()
            body = await embed(client, ["slow redis"])
            elapsed = time.perf_counter() - started
    finally:
        server.close()
    assert body["data"][0]["embedding"] == [10.0, 1.0]  # type: ignore[index]
    assert elapsed < 1.0  # a read and a write, each given up after 0.2 s
