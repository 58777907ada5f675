"""Context packing against the real SmolLM2 tokenizer and its context window."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator

import httpx
import pytest

from rag_common.contracts import ContextPassage, GroundedCompletionRequest
from rag_llm import packing, prompts
from rag_llm.backends.llamacpp import LlamaCppBackend
from rag_llm.errors import ContextTooLong
from rag_llm.main import create_app
from rag_llm.settings import Settings

from .harness import serve

FILLER = "The archive of Zorblax records many facts about its three moons and its green sky. "


def passages(count: int) -> list[ContextPassage]:
    return [
        ContextPassage(index=i, text=f"Fact {i}. " + FILLER * 5, source=f"doc{i}.txt")
        for i in range(1, count + 1)
    ]


def grounded(contexts: list[ContextPassage], **fields: object) -> GroundedCompletionRequest:
    return GroundedCompletionRequest.model_validate(
        {"question": "How many moons has Zorblax?", "contexts": contexts} | fields
    )


def pack(request: GroundedCompletionRequest, backend: LlamaCppBackend, max_tokens: int) -> packing.Packed:
    return packing.pack(request, prompts.load_template(), backend=backend, max_tokens=max_tokens)


def test_the_weakest_passages_are_dropped_whole_until_the_prompt_fits(llama_backend: LlamaCppBackend) -> None:
    contexts = passages(30)
    shuffled = random.Random(4).sample(contexts, k=len(contexts))  # ranked by index, whatever the order

    packed = pack(grounded(shuffled), llama_backend, max_tokens=64)

    kept = packed.contexts_used
    assert 0 < kept < 30
    user = packed.messages[-1].content
    for passage in contexts[:kept]:
        assert f"[{passage.index}] ({passage.source}) {passage.text.strip()}" in user, "never cut mid-passage"
    assert f"[{kept + 1}]" not in user
    assert packed.prompt_tokens == llama_backend.count_tokens(packed.messages)
    assert packed.prompt_tokens + 64 <= llama_backend.context_window
    one_more = pack(grounded(contexts[: kept + 1]), llama_backend, max_tokens=64)
    assert one_more.contexts_used == kept, "the next passage would not have fitted"


def test_everything_is_kept_when_it_fits(llama_backend: LlamaCppBackend) -> None:
    packed = pack(grounded(passages(3)), llama_backend, max_tokens=64)

    assert packed.contexts_used == 3


def test_more_room_for_the_answer_leaves_fewer_passages(llama_backend: LlamaCppBackend) -> None:
    short = pack(grounded(passages(30)), llama_backend, max_tokens=16)
    long = pack(grounded(passages(30)), llama_backend, max_tokens=400)

    assert long.contexts_used < short.contexts_used


def test_a_question_too_long_even_without_passages_is_refused(llama_backend: LlamaCppBackend) -> None:
    request = grounded(passages(2), question="Why? " * 1200)

    with pytest.raises(ContextTooLong, match="context window of 1024 tokens"):
        pack(request, llama_backend, max_tokens=64)


@pytest.fixture
async def client(settings: Settings, llama_backend: LlamaCppBackend) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(settings, backend=llama_backend)) as client:
        yield client


@pytest.mark.parametrize("stream", [False, True])
async def test_the_grounded_endpoint_reports_how_many_passages_it_used(
    client: httpx.AsyncClient, stream: bool
) -> None:
    body = {
        "question": "How many moons has Zorblax?",
        "contexts": [p.model_dump() for p in passages(30)],
        "max_tokens": 8,
        "stream": stream,
    }
    response = await client.post("/v1/grounded/completions", json=body)

    assert response.status_code == 200
    if stream:
        first = json.loads(response.text.split("\n\n")[0].removeprefix("data: "))
        assert 0 < first["contexts_used"] < 30
    else:
        answer = response.json()
        assert 0 < answer["contexts_used"] < 30
        assert answer["usage"]["prompt_tokens"] + 8 <= 1024


@pytest.mark.parametrize("stream", [False, True])
async def test_a_question_that_cannot_fit_is_a_422_problem(client: httpx.AsyncClient, stream: bool) -> None:
    body = {"question": "Why? " * 1200, "contexts": [], "stream": stream}
    response = await client.post("/v1/grounded/completions", json=body)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/context-length-exceeded")
    assert "context window of 1024 tokens" in problem["detail"]
    assert problem["tokens_needed"] > 1024
