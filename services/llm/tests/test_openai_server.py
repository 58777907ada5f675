"""The openai backend against a real third-party OpenAI-compatible server: llama.cpp's own."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from rag_llm.main import create_app
from rag_llm.settings import Settings

from .harness import serve
from .processes import UPSTREAM_MODEL, RunningServer, llama_cpp_server

pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server]")
pytest.importorskip("sse_starlette", reason="needs llama-cpp-python[server]")

SERVED = "smollm2-remote"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with llama_cpp_server(tmp_path_factory.mktemp("llama-server")) as server:
        yield server


@pytest.fixture
async def client(upstream: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        environment="test",
        backend="openai",
        model_name=SERVED,
        openai_base_url=upstream.base_url,
        openai_model=UPSTREAM_MODEL,
        default_temperature=0.0,
    )
    async with serve(create_app(settings)) as client:
        yield client


async def test_a_completion_comes_from_the_upstream_server(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions", json={"messages": QUESTION, "max_tokens": 12, "seed": 1}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["model"] == SERVED
    assert body["choices"][0]["message"]["content"].strip()
    assert body["choices"][0]["finish_reason"] in {"stop", "length"}
    assert body["usage"]["prompt_tokens"] > 5
    assert 0 < body["usage"]["completion_tokens"] <= 12


async def test_a_stream_from_the_upstream_server_matches_its_plain_answer(client: httpx.AsyncClient) -> None:
    request = {"messages": QUESTION, "max_tokens": 12, "seed": 1}
    plain = (await client.post("/v1/chat/completions", json=request)).json()
    response = await client.post("/v1/chat/completions", json=request | {"stream": True})

    assert response.status_code == 200
    payloads = [e.removeprefix("data: ") for e in response.text.split("\n\n") if e]
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["model"] == SERVED for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == plain["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] in {"stop", "length"}
    # llama_cpp.server ignores include_usage: the backend counts the chunks it relayed instead.
    assert chunks[-1]["usage"]["completion_tokens"] == plain["usage"]["completion_tokens"]


async def test_a_grounded_answer_through_the_upstream_server(client: httpx.AsyncClient) -> None:
    body = {
        "question": "What colour is the sky on Zorblax?",
        "contexts": [{"index": 1, "text": "On Zorblax the sky is green.", "source": "atlas"}],
        "max_tokens": 16,
    }
    response = await client.post("/v1/grounded/completions", json=body)

    assert response.status_code == 200
    assert response.json()["contexts_used"] == 1
    assert response.json()["prompt_version"] == "rag_v1"
