"""A real Redis (root conftest), and a small real orchestrator stand-in speaking its wire format."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from rag_devstack.processes import free_port
from rag_devstack.redis_server import RedisServer
from rag_gateway.main import create_app
from rag_gateway.settings import Settings

ADMIN_KEY = "test-admin-key"
DEV_KEY = "test-dev-key"


def _number(text: str, name: str, default: float) -> float:
    found = re.search(rf"{name}=([0-9.]+)", text)
    return float(found.group(1)) if found else default


def stand_in_orchestrator() -> FastAPI:
    """Answers like the orchestrator. A question may say `usage=N` (tokens reported) and `sleep=S`."""
    app = FastAPI()
    timing = {"Server-Timing": "orchestrator;dur=7.5"}

    def usage(total: int) -> dict[str, int]:
        return {"prompt_tokens": total // 2, "completion_tokens": total - total // 2, "total_tokens": total}

    @app.post("/v1/rag/query")
    async def rag(body: dict[str, Any], request: Request) -> Any:
        question = str(body.get("question", ""))
        await asyncio.sleep(_number(question, "sleep", 0))
        total = int(_number(question, "usage", 10))
        tenant = request.headers.get("x-tenant-id")
        if body.get("stream"):

            async def events() -> AsyncIterator[bytes]:
                yield b'event: citations\ndata: {"citations":[]}\n\n'
                yield b'event: delta\ndata: {"content":"hel"}\n\n'
                yield b'event: delta\ndata: {"content":"lo"}\n\n'
                done = {"model": "m", "usage": usage(total), "finish_reason": "stop", "safety": {}}
                yield f"event: done\ndata: {json.dumps(done)}\n\n".encode()

            return StreamingResponse(events(), media_type="text/event-stream", headers=timing)
        answer = {"answer": "hello", "citations": [], "model": "m", "usage": usage(total)}
        return JSONResponse(answer | {"echo": body, "tenant": tenant}, headers=timing)

    @app.post("/v1/documents")
    async def documents(body: dict[str, Any], request: Request) -> Any:
        return {
            "collection": body.get("collection", "default"),
            "documents": [],
            "chunks": 0,
            "tenant": request.headers.get("x-tenant-id"),
        }

    @app.post("/v1/chat/completions")
    async def chat(body: dict[str, Any]) -> Any:
        total = int(_number(str(body["messages"][-1]["content"]), "usage", 10))
        if body.get("stream"):

            async def chunks() -> AsyncIterator[bytes]:
                base = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
                yield f"data: {json.dumps(base | {'choices': [{'index': 0, 'delta': {'content': 'hi'}}]})}\n\n".encode()
                last = base | {
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "usage": usage(total),
                }
                yield f"data: {json.dumps(last)}\n\n".encode()
                yield b"data: [DONE]\n\n"

            return StreamingResponse(chunks(), media_type="text/event-stream")
        message = {"role": "assistant", "content": "hi"}
        return {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage(total),
        }

    return app


def serve_in_thread(app: FastAPI) -> tuple[str, Callable[[], None]]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=5)

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture(scope="session")
def stand_in_url() -> Iterator[str]:
    url, stop = serve_in_thread(stand_in_orchestrator())
    yield url
    stop()


@pytest.fixture
def redis_sync(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushdb()
        yield r


GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def gateway(redis_server: RedisServer, stand_in_url: str, redis_sync: redis.Redis) -> GatewayFactory:
    """`async with gateway(**settings) as client:` a gateway app in process, lifespan run."""

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        values: dict[str, Any] = {
            "redis_url": redis_server.url,
            "orchestrator_url": stand_in_url,
            "dev_api_key": DEV_KEY,
            "admin_api_key": ADMIN_KEY,
            "environment": "test",
        }
        app = create_app(Settings(**(values | overrides)))
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
                yield client

    return make


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
