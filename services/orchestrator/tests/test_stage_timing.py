"""Per-stage deadlines and timings: Server-Timing on answers and chats, 503 naming a late service,
the safety deadline inside the fail-open policy, the per-stage histogram."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable

import httpx
import pytest
from prometheus_client import REGISTRY

from rag_common.breaker import BreakerState, CircuitBreaker
from rag_common.contracts import DocumentIn, IngestRequest, SafetyVerdict, SearchHit, SearchRequest
from rag_orchestrator import ingest as ingest_service
from rag_orchestrator.adapters.deadline_safety import DeadlineSafety
from rag_orchestrator.pipeline import Pipeline

from .fakes import BagOfWordsEmbedder, KeywordSafety, MemoryRetriever

TEA = DocumentIn(id="tea", text="Green tea is made from unoxidised leaves of Camellia sinensis.")
QUERY = {"question": "What is green tea made from?", "collection": "c", "top_k": 1}
HANGS_S = 30.0


class SlowEmbedder(BagOfWordsEmbedder):
    async def embed(self, texts: list[str]) -> list[list[float]]:
        await asyncio.sleep(HANGS_S)
        return await super().embed(texts)


class SlowRetriever(MemoryRetriever):
    async def search(self, collection: str, query: SearchRequest) -> list[SearchHit]:
        await asyncio.sleep(HANGS_S)
        return await super().search(collection, query)


class SlowSafety(KeywordSafety):
    async def check(self, text: str, direction: str, tenant: str | None = None) -> SafetyVerdict:
        await asyncio.sleep(HANGS_S)
        return await super().check(text, direction, tenant)


@pytest.fixture
async def ingested(pipeline: Pipeline) -> Pipeline:
    """`c` of the default tenant, holding one document."""
    await ingest_service.ingest(IngestRequest(collection="t-default--c", documents=[TEA]), pipeline=pipeline)
    return pipeline


def server_timing(response: httpx.Response) -> dict[str, float]:
    metrics = [part.strip().split(";dur=") for part in response.headers["Server-Timing"].split(",")]
    return {name: float(ms) for name, ms in metrics}


def with_settings(pipeline: Pipeline, **changes: object) -> Pipeline:
    return dataclasses.replace(pipeline, settings=pipeline.settings.model_copy(update=changes))


async def test_an_answer_carries_the_time_of_every_stage(ingested: Pipeline, serve: Callable) -> None:
    client = await serve(ingested)
    response = await client.post("/v1/rag/query", json=QUERY)
    assert response.status_code == 200
    timings = server_timing(response)
    stages = [
        "cache",
        "safety_in",
        "embed",
        "retrieve",
        "screen",
        "generate",
        "safety_out",
        "ground",
        "total",
    ]
    assert list(timings) == stages
    assert all(ms >= 0 for ms in timings.values())
    assert timings["total"] >= max(timings[s] for s in stages[:-1])


async def test_a_stream_says_what_it_knows_before_the_body_and_the_rest_at_the_end(
    ingested: Pipeline, serve: Callable
) -> None:
    client = await serve(ingested)
    async with client.stream("POST", "/v1/rag/query", json=QUERY | {"stream": True}) as response:
        header = server_timing(response)
        lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert list(header) == ["cache", "safety_in", "embed", "retrieve", "screen", "generate", "ttfb"]
    done = json.loads(lines[-1].removeprefix("data: "))
    assert {"generate", "stream", "ground", "total"} <= set(done["timings"])
    assert done["timings"]["total"] >= header["ttfb"]


async def test_a_chat_carries_its_stages_too(ingested: Pipeline, serve: Callable) -> None:
    client = await serve(ingested)
    body = {"messages": [{"role": "user", "content": "What is green tea made from?"}], "collection": "c"}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert list(server_timing(response)) == [
        "safety_in", "embed", "retrieve", "screen", "generate", "safety_out", "total"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("slow", "setting", "service"),
    [
        ({"embedder": SlowEmbedder()}, "embed_timeout_s", "embedding"),
        ({"retriever": SlowRetriever()}, "retrieval_timeout_s", "retrieval"),
    ],
)
async def test_a_late_stage_answers_503_naming_its_service(
    ingested: Pipeline, serve: Callable, slow: dict[str, object], setting: str, service: str
) -> None:
    if isinstance(retriever := slow.get("retriever"), MemoryRetriever):
        assert isinstance(ingested.retriever, MemoryRetriever)
        retriever.collections = ingested.retriever.collections
    client = await serve(with_settings(dataclasses.replace(ingested, **slow), **{setting: 0.2}))
    upstream = CircuitBreaker(failure_threshold=1, cooldown_s=60, name=service)
    started = time.monotonic()
    response = await client.post("/v1/rag/query", json=QUERY)
    assert time.monotonic() - started < 5, "never waits for the hung call"
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["service"] == service
    assert "0.2 s" in problem["detail"]
    assert upstream.state is BreakerState.OPEN, "a missed deadline counts against the service's breaker"


async def test_a_late_safety_service_fails_closed_or_open_as_configured(
    ingested: Pipeline, serve: Callable
) -> None:
    late = dataclasses.replace(ingested, safety=DeadlineSafety(SlowSafety(), timeout_s=0.2))
    closed = await (await serve(late)).post("/v1/rag/query", json=QUERY)
    assert closed.status_code == 503
    assert closed.json()["service"] == "safety"
    opened = await (await serve(with_settings(late, safety_fail_open=True))).post("/v1/rag/query", json=QUERY)
    assert opened.status_code == 200
    assert opened.json()["safety"]["input"] == "unchecked"


async def test_every_stage_is_observed_in_its_histogram(ingested: Pipeline, serve: Callable) -> None:
    def count(stage: str) -> float:
        value = REGISTRY.get_sample_value("rag_orchestrator_stage_duration_seconds_count", {"stage": stage})
        return value or 0.0

    before = {stage: count(stage) for stage in ("embed", "retrieve", "generate")}
    client = await serve(ingested)
    assert (await client.post("/v1/rag/query", json=QUERY)).status_code == 200
    assert all(count(stage) == before[stage] + 1 for stage in before)
