"""The openai backend when its OpenAI-compatible server cannot be reached."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from rag_llm.main import create_app
from rag_llm.settings import Settings

from .harness import serve


def closed_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        environment="test",
        backend="openai",
        openai_base_url=f"http://127.0.0.1:{closed_loopback_port()}/v1",
        upstream_retries=0,
    )
    async with serve(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("stream", [False, True])
async def test_an_unreachable_backend_is_a_503_problem(client: httpx.AsyncClient, stream: bool) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": stream}
    response = await client.post("/v1/chat/completions", json=body)

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    problem = response.json()
    assert problem["service"] == "llm-backend"
    assert problem["type"].endswith("/upstream-unavailable")
    assert "127.0.0.1" not in problem["detail"], "no connection details leak to the client"


async def test_the_grounded_endpoint_reports_the_same_503(client: httpx.AsyncClient) -> None:
    body = {"question": "q?", "contexts": [{"index": 1, "text": "t"}]}
    response = await client.post("/v1/grounded/completions", json=body)

    assert response.status_code == 503
    assert response.json()["service"] == "llm-backend"


async def test_the_models_endpoint_works_without_the_backend(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models")

    assert response.json()["data"][0]["id"] == "smollm2-135m-instruct"
