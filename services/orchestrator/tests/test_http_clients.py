from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from rag_common.contracts import ContextPassage, GroundedCompletionRequest
from rag_common.errors import UpstreamUnavailable
from rag_common.http import ServiceClient
from rag_orchestrator.adapters.http_clients import LlmClient

CHUNK = '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"%s"}}]}'


def llm_app(failing: bool) -> FastAPI:
    """Speaks the llm service's wire format: OpenAI chunks, `[DONE]`, or an error event mid-stream."""
    app = FastAPI()

    @app.post("/v1/grounded/completions")
    async def grounded() -> StreamingResponse:
        async def events() -> AsyncIterator[str]:
            yield f"data: {CHUNK % 'Hel'}\n\n"
            if failing:
                yield 'data: {"error": {"message": "model crashed", "type": "internal", "code": 500}}\n\n'
                return
            yield f"data: {CHUNK % 'lo'}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def client(failing: bool) -> LlmClient:
    transport = httpx.ASGITransport(app=llm_app(failing))
    return LlmClient(ServiceClient("llm", "http://llm", transport=transport))


REQUEST = GroundedCompletionRequest(question="q", contexts=[ContextPassage(index=1, text="t")])


async def test_stream_yields_chunks_until_done() -> None:
    chunks = await client(failing=False).grounded_stream(REQUEST)
    assert [c.choices[0].delta.content async for c in chunks] == ["Hel", "lo"]


async def test_error_event_mid_stream_raises_upstream_unavailable() -> None:
    chunks = await client(failing=True).grounded_stream(REQUEST)
    received: list[str | None] = []

    async def drain() -> None:
        async for chunk in chunks:
            received.append(chunk.choices[0].delta.content)

    with pytest.raises(UpstreamUnavailable, match="model crashed") as caught:
        await drain()
    assert received == ["Hel"]
    assert caught.value.service == "llm"
