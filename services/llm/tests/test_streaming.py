"""Streams: the event loop stays free, early closes stop the model, failures reach the client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rag_common.contracts import ChatMessage
from rag_common.errors import UpstreamUnavailable
from rag_common.telemetry import setup_tracing
from rag_llm.backends.llamacpp import LlamaCppBackend
from rag_llm.main import create_app
from rag_llm.ports import SamplingParams, StreamEvent
from rag_llm.settings import Settings

from .fakes import ScriptedBackend
from .harness import llama_backend_for_tests, serve

STORY = [ChatMessage(role="user", content="Write a very long story about a dragon and a knight.")]
LONG = SamplingParams(max_tokens=400, temperature=0.0, seed=1)


async def test_closing_a_stream_early_stops_generation_and_frees_the_model(
    llama_backend: LlamaCppBackend,
) -> None:
    stream = llama_backend.stream(STORY, LONG)
    pieces = [await anext(stream) for _ in range(3)]
    await stream.aclose()

    assert all(isinstance(p, str) for p in pieces)
    # The worker thread has returned when aclose does: the context holds the prompt plus a few tokens.
    assert llama_backend._llama.n_tokens < 100
    short = await asyncio.wait_for(
        llama_backend.complete(STORY, SamplingParams(max_tokens=2, temperature=0)), 30
    )
    assert short.usage.completion_tokens == 2


async def test_a_cancelled_stream_consumer_releases_the_model(llama_backend: LlamaCppBackend) -> None:
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in llama_backend.stream(STORY, LONG):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert llama_backend._llama.n_tokens < 100
    short = await asyncio.wait_for(
        llama_backend.complete(STORY, SamplingParams(max_tokens=2, temperature=0)), 30
    )
    assert short.text


async def longest_loop_stall(work: Awaitable[object]) -> tuple[float, float]:
    """How long `work` took, and the longest the event loop went without running another task meanwhile."""
    longest, done = 0.0, asyncio.Event()

    async def heartbeat() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            longest, last = max(longest, now - last), now

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)  # the heartbeat starts its clock before the work does
    started = time.perf_counter()
    await work
    elapsed = time.perf_counter() - started
    done.set()
    await beat
    return elapsed, longest


async def test_generation_never_blocks_the_event_loop(llama_backend: LlamaCppBackend) -> None:
    params = SamplingParams(max_tokens=96, temperature=0.0)

    async def stream() -> list[StreamEvent]:
        return [e async for e in llama_backend.stream(STORY, params)]

    # Were the model run on the loop, the loop would stall for the whole generation.
    for work in (llama_backend.complete(STORY, params), stream()):
        elapsed, stall = await longest_loop_stall(work)
        assert stall < elapsed / 3, f"the loop stalled {stall:.3f} s of {elapsed:.3f} s"


async def test_concurrent_requests_take_turns_on_the_model() -> None:
    backend = llama_backend_for_tests()
    params = SamplingParams(max_tokens=12, temperature=0.0, seed=3)

    async def streamed() -> str:
        return "".join([e async for e in backend.stream(STORY, params) if isinstance(e, str)])

    alone = (await backend.complete(STORY, params)).text
    together = await asyncio.gather(
        backend.complete(STORY, params), streamed(), backend.complete(STORY, params)
    )

    assert [together[0].text, together[1], together[2].text] == [alone, alone, alone]
    await backend.aclose()


async def test_a_failure_mid_stream_ends_it_with_an_openai_error_event(settings: Settings) -> None:
    backend = ScriptedBackend(["Hel", "lo"], fail_with=UpstreamUnavailable("llm-backend"))
    async with serve(create_app(settings, backend=backend)) as client:
        response = await client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "stream": True}
        )

    payloads = [e.removeprefix("data: ") for e in response.text.split("\n\n") if e]
    assert response.status_code == 200
    assert "[DONE]" not in payloads
    chunks = [json.loads(p) for p in payloads]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]) == "Hello"
    assert chunks[-1]["error"]["code"] == 503
    assert chunks[-1]["error"]["type"] == "upstream-unavailable"


async def test_the_grounded_prompt_version_is_recorded_on_the_span(settings: Settings) -> None:
    exporter = InMemorySpanExporter()
    setup_tracing("llm", extra_processor=SimpleSpanProcessor(exporter))
    backend = ScriptedBackend(["It is green [1]."])
    body = {"question": "Sky colour?", "contexts": [{"index": 1, "text": "The sky is green."}]}
    async with serve(create_app(settings, backend=backend)) as client:
        response = await client.post("/v1/grounded/completions", json=body)

    assert response.json()["prompt_version"] == "rag_v1"
    versions = [s.attributes.get("llm.prompt_version") for s in exporter.get_finished_spans() if s.attributes]
    assert "rag_v1" in versions
    assert "[1] The sky is green." in backend.seen[0][-1].content
