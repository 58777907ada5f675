"""The official `openai` SDK parses what the service sends, plain and streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import openai
import pytest
from asgi_lifespan import LifespanManager

from rag_llm.backends.llamacpp import LlamaCppBackend
from rag_llm.main import create_app
from rag_llm.settings import Settings

from .harness import MODEL

QUESTION: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture
async def sdk(settings: Settings, llama_backend: LlamaCppBackend) -> AsyncIterator[openai.AsyncOpenAI]:
    # openai 3.x runs on httpx2, which has its own ASGITransport.
    async with LifespanManager(create_app(settings, backend=llama_backend)) as manager:
        transport = httpx2.ASGITransport(app=manager.app)
        async with httpx2.AsyncClient(transport=transport) as http:
            yield openai.AsyncOpenAI(
                base_url="http://llm/v1", api_key="unused", http_client=http, max_retries=0
            )


async def test_the_sdk_parses_a_completion(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=8)

    assert completion.model == MODEL
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0


async def test_the_sdk_parses_a_stream_with_usage(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=8, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks).strip()
    assert chunks[-1].choices[0].finish_reason in {"stop", "length"}
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0


async def test_the_sdk_lists_the_model(sdk: openai.AsyncOpenAI) -> None:
    models = await sdk.models.list()

    assert [m.id for m in models.data] == [MODEL]


async def test_the_sdk_raises_not_found_for_another_model(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        await sdk.chat.completions.create(model="gpt-4o", messages=QUESTION)
