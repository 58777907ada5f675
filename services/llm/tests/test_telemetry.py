"""gen_ai attributes, time to first token and time per output token on the request span."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rag_common.model_slots import MODEL_VERSION_ATTRIBUTE
from rag_common.telemetry import setup_tracing
from rag_llm import observe
from rag_llm.backends.llamacpp import LlamaCppBackend
from rag_llm.main import create_app
from rag_llm.settings import ModelSpec, Settings

from .harness import MODEL, serve
from .processes import free_port

QUESTION = [{"role": "user", "content": "Write a story about a dragon."}]


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    setup_tracing("llm", extra_processor=SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # later spans are dropped, not kept in memory


def number(attributes: Mapping[str, object], key: str) -> float:
    value = attributes[key]
    assert isinstance(value, int | float), f"{key} is {value!r}"
    return value


def generation_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = [
        s for s in exporter.get_finished_spans() if s.attributes and observe.RESPONSE_MODEL in s.attributes
    ]
    assert len(spans) == 1
    return spans[0]


async def test_a_stream_records_usage_and_token_timings(
    exporter: InMemorySpanExporter, settings: Settings, llama_backend: LlamaCppBackend
) -> None:
    async with serve(create_app(settings, backend=llama_backend)) as client:
        body = {"messages": QUESTION, "max_tokens": 8, "stream": True}
        response = await client.post("/v1/chat/completions", json=body)
    final = json.loads(response.text.split("\n\n")[-3].removeprefix("data: "))

    attributes = generation_span(exporter).attributes or {}
    assert attributes[observe.REQUEST_MODEL] == attributes[observe.RESPONSE_MODEL] == MODEL
    assert (
        attributes[MODEL_VERSION_ATTRIBUTE] == response.headers["X-Model-Version"] == final["model_version"]
    )
    assert number(attributes, observe.INPUT_TOKENS) == final["usage"]["prompt_tokens"] > 5
    assert number(attributes, observe.OUTPUT_TOKENS) == final["usage"]["completion_tokens"] == 8
    assert tuple(attributes[observe.FINISH_REASONS]) == ("length",)  # type: ignore[arg-type]
    assert 0 < number(attributes, observe.TIME_TO_FIRST_TOKEN) < 30
    assert 0 < number(attributes, observe.TIME_PER_OUTPUT_TOKEN) < 5


async def test_a_plain_grounded_answer_records_usage_and_passages_used(
    exporter: InMemorySpanExporter, settings: Settings, llama_backend: LlamaCppBackend
) -> None:
    body = {"question": "Sky?", "contexts": [{"index": 1, "text": "The sky is green."}], "max_tokens": 4}
    async with serve(create_app(settings, backend=llama_backend)) as client:
        answer = (await client.post("/v1/grounded/completions", json=body)).json()

    attributes = generation_span(exporter).attributes or {}
    assert attributes[observe.INPUT_TOKENS] == answer["usage"]["prompt_tokens"]
    assert attributes[observe.OUTPUT_TOKENS] == answer["usage"]["completion_tokens"]
    assert attributes[observe.CONTEXTS_USED] == 1
    assert attributes["llm.prompt_version"] == "rag_v1"
    assert observe.TIME_TO_FIRST_TOKEN not in attributes, "a plain answer has no first token to time"


async def test_a_failed_request_still_names_the_model_asked(
    exporter: InMemorySpanExporter,
) -> None:
    models = [
        ModelSpec(name="remote", backend="openai", base_url=f"http://127.0.0.1:{free_port()}/v1"),
        ModelSpec(name="second-remote", backend="openai", base_url=f"http://127.0.0.1:{free_port()}/v1"),
    ]
    settings = Settings(
        environment="test", models=models, fallbacks={"remote": ["second-remote"]}, upstream_retries=0
    )
    async with serve(create_app(settings)) as client:
        response = await client.post("/v1/chat/completions", json={"messages": QUESTION})

    assert response.status_code == 503
    spans = [
        s for s in exporter.get_finished_spans() if s.attributes and observe.REQUEST_MODEL in s.attributes
    ]
    assert len(spans) == 1
    assert (spans[0].attributes or {})[observe.REQUEST_MODEL] == "remote"
    assert observe.RESPONSE_MODEL not in (spans[0].attributes or {})


async def test_a_fallback_names_both_models(exporter: InMemorySpanExporter) -> None:
    models = [
        ModelSpec(name="remote", backend="openai", base_url=f"http://127.0.0.1:{free_port()}/v1"),
        ModelSpec(name=MODEL, backend="llamacpp", context_window=1024),
    ]
    settings = Settings(
        environment="test", models=models, fallbacks={"remote": [MODEL]}, upstream_retries=0, n_threads=1
    )
    async with serve(create_app(settings)) as client:
        response = await client.post("/v1/chat/completions", json={"messages": QUESTION, "max_tokens": 2})

    assert response.status_code == 200
    attributes = generation_span(exporter).attributes or {}
    assert attributes[observe.REQUEST_MODEL] == "remote"
    assert attributes[observe.RESPONSE_MODEL] == MODEL
    assert attributes[observe.FALLBACK_FROM] == "remote"
