from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from rag_devstack.processes import free_port
from rag_devstack.redis_server import RedisServer, start_redis
from rag_gateway.adapters.redis_store import KEY_PREFIX, hash_key
from rag_gateway.main import create_app
from rag_gateway.settings import Settings

KEY = "test-key"
LIMIT = 5


def fake_orchestrator() -> FastAPI:
    """Speaks the orchestrator's wire format: JSON answers and an SSE stream."""
    app = FastAPI()

    @app.post("/v1/rag/query")
    async def rag(body: dict[str, object]) -> object:
        if body.get("stream"):

            async def events() -> AsyncIterator[bytes]:
                yield b'event: delta\ndata: {"content":"hel"}\n\n'
                yield b'event: delta\ndata: {"content":"lo"}\n\n'

            return StreamingResponse(events(), media_type="text/event-stream")
        return {"answer": "hello", "citations": [], "model": "m", "echo": body}

    return app


@pytest.fixture(scope="module")
def orchestrator_url() -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(fake_orchestrator(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def flush(redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushdb()


@pytest.fixture
async def client(
    redis_server: RedisServer, orchestrator_url: str, flush: None
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        redis_url=redis_server.url,
        orchestrator_url=orchestrator_url,
        dev_api_key=KEY,
        rate_limit_per_minute=LIMIT,
    )
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_forwards_rag_query_with_rate_limit_headers(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/rag/query", json={"question": "hi", "collection": "c"}, headers=auth())
    assert response.status_code == 200
    assert response.json()["echo"] == {"question": "hi", "collection": "c"}
    assert response.headers["ratelimit-policy"].startswith(f'"per-key";q={LIMIT};w=60, "per-tenant";q=')
    assert response.headers["ratelimit"].startswith(f'"per-key";r={LIMIT - 1};')


async def test_x_api_key_header_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/rag/query", json={"question": "hi"}, headers={"X-API-Key": KEY})
    assert response.status_code == 200


async def test_sse_passes_through_event_by_event(client: httpx.AsyncClient) -> None:
    async with client.stream(
        "POST", "/v1/rag/query", json={"question": "hi", "stream": True}, headers=auth()
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line async for line in r.aiter_lines() if line.startswith("data:")]
    assert [json.loads(line.removeprefix("data: "))["content"] for line in lines] == ["hel", "lo"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}, {"Authorization": "Basic abc"}]
)
async def test_missing_or_wrong_key_is_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.post("/v1/rag/query", json={"question": "hi"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_keys_are_stored_only_as_hashes(client: httpx.AsyncClient, redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as r:
        stored = [k.decode() for k in r.keys(KEY_PREFIX + "*")]
        assert stored == [KEY_PREFIX + hash_key(KEY)]
        assert all(KEY not in k.removeprefix(KEY_PREFIX) for k in stored)


async def test_past_the_limit_requests_get_429_with_retry_after(client: httpx.AsyncClient) -> None:
    statuses = [
        (await client.post("/v1/rag/query", json={"question": "hi"}, headers=auth())).status_code
        for _ in range(LIMIT)
    ]
    assert statuses == [200] * LIMIT
    refused = await client.post("/v1/rag/query", json={"question": "hi"}, headers=auth())
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit"].startswith('"per-key";r=0;')
    assert refused.json()["title"] == "Too Many Requests"


async def test_limits_are_per_key(client: httpx.AsyncClient, redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as r:
        r.set(KEY_PREFIX + hash_key("other"), json.dumps({"tenant": "t", "name": "other"}))
    for _ in range(LIMIT):
        await client.post("/v1/rag/query", json={"question": "hi"}, headers=auth())
    assert (
        await client.post("/v1/rag/query", json={"question": "hi"}, headers=auth("other"))
    ).status_code == 200


async def test_invalid_body_is_422_from_the_gateway_itself(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/rag/query", json={"question": ""}, headers=auth())
    assert response.status_code == 422
    assert response.json()["detail"].startswith("question")


async def test_orchestrator_down_is_503_naming_it(redis_server: RedisServer, flush: None) -> None:
    settings = Settings(
        redis_url=redis_server.url, orchestrator_url=f"http://127.0.0.1:{free_port()}", dev_api_key=KEY
    )
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://gateway") as http,
    ):
        response = await http.post("/v1/rag/query", json={"question": "hi"}, headers=auth())
    assert response.status_code == 503
    assert response.json()["service"] == "orchestrator"


async def test_redis_down_is_503_not_a_hang(tmp_path: Path) -> None:
    own_redis = start_redis(free_port(), tmp_path / "redis", tmp_path / "redis.log")
    settings = Settings(redis_url=own_redis.url, dev_api_key=KEY, redis_timeout_s=0.5)
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://gateway") as http,
    ):
        own_redis.stop()
        started = time.monotonic()
        response = await http.post("/v1/rag/query", json={"question": "hi"}, headers=auth())
        ready = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["service"] == "redis"
    assert time.monotonic() - started < 5
    assert ready.status_code == 503
