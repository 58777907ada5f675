"""The HTTP API with the real llama.cpp backend and the SmolLM2 GGUF shipped on PyPI."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rag_llm.backends.llamacpp import LlamaCppBackend
from rag_llm.main import create_app
from rag_llm.settings import Settings

from .harness import MODEL, serve

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
GROUNDED = {
    "question": "What colour is the sky on Zorblax?",
    "contexts": [
        {"index": 1, "text": "On the planet Zorblax the sky is green.", "source": "atlas.txt"},
        {"index": 2, "text": "Zorblax has three moons.", "source": "moons.txt"},
    ],
    "max_tokens": 24,
}


@pytest.fixture
async def client(settings: Settings, llama_backend: LlamaCppBackend) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(settings, backend=llama_backend)) as client:
        yield client


def sse_payloads(body: str) -> list[str]:
    """The `data:` payloads of an SSE body, checking every event is exactly one `data:` line."""
    events = body.split("\n\n")
    assert events[-1] == "", "the stream ends with a blank line"
    assert all(e.startswith("data: ") and "\n" not in e for e in events[:-1])
    return [e.removeprefix("data: ") for e in events[:-1]]


def parse_stream(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    return [json.loads(p) for p in payloads[:-1]]


async def test_chat_completion_answers_with_token_usage(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json={"messages": QUESTION, "max_tokens": 16})

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == MODEL
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["message"]["content"].strip()
    assert body["choices"][0]["finish_reason"] in {"stop", "length"}
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= 16
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_max_tokens_caps_the_answer_and_reports_length(client: httpx.AsyncClient) -> None:
    messages = [{"role": "user", "content": "Write a long story about a dragon."}]
    response = await client.post("/v1/chat/completions", json={"messages": messages, "max_tokens": 4})

    body = response.json()
    assert body["usage"]["completion_tokens"] == 4
    assert body["choices"][0]["finish_reason"] == "length"


async def test_streamed_chat_sends_role_deltas_usage_and_done(client: httpx.AsyncClient) -> None:
    request = {"messages": QUESTION, "max_tokens": 16, "stream": True}
    response = await client.post("/v1/chat/completions", json=request)

    chunks = parse_stream(response)
    assert len({c["id"] for c in chunks}) == 1, "one completion id for the whole stream"
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.strip()
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] in {"stop", "length"}
    assert last["usage"]["prompt_tokens"] > 0
    assert last["usage"]["completion_tokens"] > 0
    assert all(c["choices"][0].get("finish_reason") is None for c in chunks[:-1])


async def test_stream_and_plain_completion_agree_on_usage(client: httpx.AsyncClient) -> None:
    request = {"messages": QUESTION, "max_tokens": 12, "temperature": 0, "seed": 7}
    plain = (await client.post("/v1/chat/completions", json=request)).json()
    streamed = parse_stream(await client.post("/v1/chat/completions", json=request | {"stream": True}))

    text = "".join(c["choices"][0]["delta"].get("content", "") for c in streamed)
    assert text == plain["choices"][0]["message"]["content"]
    assert streamed[-1]["usage"] == plain["usage"]


async def test_grounded_completion_reports_its_prompt_version(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/grounded/completions", json=GROUNDED)

    assert response.status_code == 200
    body = response.json()
    assert body["prompt_version"] == "rag_v1"
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"].strip()
    assert body["usage"]["prompt_tokens"] > 50, "the numbered contexts are part of the prompt"


async def test_streamed_grounded_completion_tags_the_first_chunk(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/grounded/completions", json=GROUNDED | {"stream": True})

    chunks = parse_stream(response)
    assert chunks[0]["prompt_version"] == "rag_v1"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["usage"]["completion_tokens"] > 0


async def test_models_lists_the_served_model(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models")

    assert response.json() == {
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "rag-platform"}],
    }


async def test_the_served_model_name_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions", json={"model": MODEL, "messages": QUESTION, "max_tokens": 2}
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "gpt-4o", "messages": QUESTION}),
        ("/v1/chat/completions", {"model": "gpt-4o", "messages": QUESTION, "stream": True}),
        ("/v1/grounded/completions", GROUNDED | {"model": "gpt-4o"}),
    ],
)
async def test_an_unknown_model_is_a_404_problem(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    response = await client.post(path, json=body)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 404
    assert "gpt-4o" in problem["detail"]
    assert MODEL in problem["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": QUESTION, "temperature": 5}, "temperature"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages"),
        ({"messages": QUESTION, "max_tokens": 0}, "max_tokens"),
    ],
)
async def test_invalid_requests_are_422_problems(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/chat/completions", json=body)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Unprocessable Content"
    assert problem["detail"].startswith(field)
    assert problem["request_id"]


async def test_a_grounded_request_without_a_question_is_a_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/grounded/completions", json=GROUNDED | {"question": "  "})

    assert response.status_code == 422
    assert response.json()["detail"].startswith("question")


async def test_a_prompt_longer_than_the_context_window_is_a_422_problem(client: httpx.AsyncClient) -> None:
    messages = [{"role": "user", "content": "hello " * 3000}]

    for stream in (False, True):
        response = await client.post("/v1/chat/completions", json={"messages": messages, "stream": stream})

        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert "context window of 1024 tokens" in response.json()["detail"]
