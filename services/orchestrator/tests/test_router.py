"""The model router and A/B experiments: policy order, weighted sticky assignment, tenant scoping,
refusals, headers on answers and streams, span attributes, and answer-cache keys per variant."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest
import redis
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from rag_common.contracts import DocumentIn, IngestRequest, RagAnswer, RagQuery
from rag_common.errors import UnprocessableContent
from rag_devstack.redis_server import RedisServer
from rag_orchestrator import ingest as ingest_service
from rag_orchestrator import rag as rag_service
from rag_orchestrator import router as model_router
from rag_orchestrator.adapters import redis_cache
from rag_orchestrator.adapters.redis_cache import RedisCache
from rag_orchestrator.experiments import Experiment, Variant
from rag_orchestrator.pipeline import Pipeline
from rag_orchestrator.settings import Settings

from .fakes import QuotingGenerator

TEA = DocumentIn(id="tea", text="Green tea is made from unoxidised leaves of Camellia sinensis.")
QUERY = {"question": "What is green tea made from?", "collection": "c", "top_k": 1}
SPLIT = Experiment(
    name="prompt-ab",
    sticky="user",
    variants=[
        Variant(name="control", weight=1, prompt_version="rag_v1"),
        Variant(name="treatment", weight=3, model="large", prompt_version="rag_v2"),
    ],
)
ROUTING = {
    "llm_model": "small",
    "allowed_models": ["small", "large"],
    "model_tiers": {"fast": "small", "quality": "large"},
    "tenant_models": {"acme": "acme-tuned"},
    "experiments": [SPLIT],
}


def settings(**changes: object) -> Settings:
    return Settings.model_validate(ROUTING | changes)


def query(**fields: object) -> RagQuery:
    return RagQuery.model_validate({"question": "Why?"} | fields)


def users_in(variant: str) -> list[str]:
    return [f"user-{i}" for i in range(100) if SPLIT.assign(f"user-{i}").name == variant]


def user_in(variant: str) -> str:
    return users_in(variant)[0]


def generated(pipeline: Pipeline) -> int:
    assert isinstance(pipeline.generator, QuotingGenerator)
    return len(pipeline.generator.requests)


def routed(pipeline: Pipeline, **changes: object) -> Pipeline:
    return dataclasses.replace(pipeline, settings=pipeline.settings.model_copy(update=ROUTING | changes))


def test_each_rule_applies_only_when_the_ones_before_it_do_not() -> None:
    s = settings()
    user = user_in("treatment")
    full = query(model="large", tier="fast", user=user)
    assert model_router.choose(full, "acme", s).reason == "request"
    assert model_router.choose(full.model_copy(update={"model": None}), "acme", s).model == "small"
    assert model_router.choose(query(user=user), "acme", s).model == "acme-tuned"
    assert model_router.choose(query(user=user), "default", s) == model_router.Choice(
        "large", "rag_v2", "experiment", "prompt-ab", "treatment"
    )
    assert model_router.choose(query(user=user), "default", settings(experiments=[])) == model_router.Choice(
        "small", "rag_v1", "default"
    )


def test_a_variant_without_a_model_or_prompt_keeps_the_global_ones() -> None:
    choice = model_router.choose(query(user=user_in("control")), "default", settings(prompt_version="rag_v9"))
    assert (choice.model, choice.prompt_version, choice.variant) == ("small", "rag_v1", "control")
    bare = Experiment(name="bare", variants=[Variant(name="a"), Variant(name="b")])
    choice = model_router.choose(
        query(user="u"), "default", settings(experiments=[bare], prompt_version="rag_v9")
    )
    assert (choice.model, choice.prompt_version) == ("small", "rag_v9")


def test_a_model_clients_may_not_name_is_refused_naming_the_allowed_ones() -> None:
    with pytest.raises(UnprocessableContent) as refused:
        model_router.choose(query(model="gpt-5"), "default", settings())
    assert "small, large" in refused.value.detail
    assert refused.value.extra == {"allowed_models": ["small", "large"]}
    anything = model_router.choose(query(model="gpt-5"), "default", settings(allowed_models=[]))
    assert anything.model == "gpt-5", "an empty allow-list leaves the check to the llm service"


def test_an_unknown_tier_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UnprocessableContent, match="known: fast, quality"):
        model_router.choose(query(tier="cheapest"), "default", settings())


def test_weights_split_the_traffic_within_a_percent() -> None:
    counts = Counter(SPLIT.assign(f"user-{i}").name for i in range(20_000))
    assert abs(counts["treatment"] / 20_000 - 0.75) < 0.01
    zero = Experiment(name="off", variants=[Variant(name="a", weight=0), Variant(name="b")])
    assert {zero.assign(f"user-{i}").name for i in range(1000)} == {"b"}


def test_a_user_keeps_their_variant_and_experiments_split_independently() -> None:
    s = settings()
    first = [model_router.choose(query(user=f"u{i}"), "default", s).variant for i in range(200)]
    again = [model_router.choose(query(user=f"u{i}"), "default", s).variant for i in range(200)]
    assert first == again
    renamed = SPLIT.model_copy(update={"name": "other"})
    assert [renamed.assign(f"u{i}").name for i in range(200)] != first


def test_the_gateways_caller_id_is_the_sticky_key_when_the_query_names_no_user() -> None:
    s = settings()
    caller = user_in("treatment")
    assert model_router.choose(query(), "default", s, caller=caller).variant == "treatment"
    assert (
        model_router.choose(query(user=user_in("control")), "default", s, caller=caller).variant == "control"
    )


def test_a_session_experiment_sticks_per_session_and_without_one_per_request() -> None:
    by_session = SPLIT.model_copy(update={"sticky": "session"})
    s = settings(experiments=[by_session])
    sessions = [model_router.choose(query(session_id=f"s{i}", user="same"), "default", s) for i in range(40)]
    assert {c.variant for c in sessions} == {"control", "treatment"}, "the user is not the key"
    assert [c.variant for c in sessions] == [by_session.assign(f"s{i}").name for i in range(40)]
    unkeyed = {model_router.choose(query(), "default", s).variant for _ in range(40)}
    assert unkeyed == {"control", "treatment"}, "no key: a fresh request id each time"


def test_an_experiment_scoped_to_tenants_leaves_the_others_alone() -> None:
    scoped = SPLIT.model_copy(update={"tenants": ["beta"]})
    s = settings(experiments=[scoped])
    user = user_in("treatment")
    assert model_router.choose(query(user=user), "beta", s).variant == "treatment"
    assert model_router.choose(query(user=user), "default", s).reason == "default"


def test_experiment_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="distinct"):
        Experiment(name="x", variants=[Variant(name="a"), Variant(name="a")])
    with pytest.raises(ValueError, match="more than 0"):
        Experiment(name="x", variants=[Variant(name="a", weight=0), Variant(name="b", weight=0)])
    with pytest.raises(ValueError, match="names must be distinct"):
        settings(experiments=[SPLIT, SPLIT])


def test_the_choice_is_recorded_on_the_requests_span(pipeline: Pipeline) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("POST /v1/rag/query"):
        model_router.route(query(user=user_in("treatment")), "default", routed(pipeline))
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {}) == {
        "rag.route.reason": "experiment",
        "rag.route.model": "large",
        "rag.route.prompt_version": "rag_v2",
        "rag.experiment": "prompt-ab",
        "rag.variant": "treatment",
    }


@pytest.fixture
async def ingested(pipeline: Pipeline) -> Pipeline:
    await ingest_service.ingest(IngestRequest(collection="t-default--c", documents=[TEA]), pipeline=pipeline)
    return routed(pipeline)


def sample(name: str, variant: str) -> float:
    return REGISTRY.get_sample_value(name, {"experiment": "prompt-ab", "variant": variant}) or 0.0


def treatment_samples() -> list[float]:
    names = [
        "rag_experiment_requests_total",
        "rag_experiment_answer_duration_seconds_count",
        "rag_experiment_completion_tokens_total",
        "rag_experiment_grounding_score_count",
    ]
    return [sample(name, "treatment") for name in names]


async def test_an_answer_names_its_experiment_variant_and_model(ingested: Pipeline, serve: Callable) -> None:
    client = await serve(ingested)
    before = treatment_samples()
    response = await client.post("/v1/rag/query", json=QUERY | {"user": user_in("treatment")})
    assert response.status_code == 200
    assert response.headers["X-Experiment"] == "prompt-ab"
    assert response.headers["X-Variant"] == "treatment"
    assert response.headers["X-Model"] == "quoting-model", "the model that answered"
    body = response.json()
    assert (body["experiment"], body["variant"]) == ("prompt-ab", "treatment")
    requests, answers, tokens, grounded = (
        now - then for now, then in zip(treatment_samples(), before, strict=True)
    )
    assert (requests, answers, tokens, grounded) == (1, 1, body["usage"]["completion_tokens"], 1)
    assert isinstance(ingested.generator, QuotingGenerator)
    asked = ingested.generator.requests[-1]
    assert (asked.model, asked.prompt_version) == ("large", "rag_v2")


async def test_a_stream_names_its_variant_in_the_headers(ingested: Pipeline, serve: Callable) -> None:
    client = await serve(ingested)
    body = QUERY | {"stream": True, "user": user_in("control")}
    async with client.stream("POST", "/v1/rag/query", json=body) as response:
        lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert response.status_code == 200
    assert (response.headers["X-Experiment"], response.headers["X-Variant"]) == ("prompt-ab", "control")
    assert response.headers["X-Model"] == "small", "a stream's headers name the model asked for"
    assert json.loads(lines[-1].removeprefix("data: "))["model"] == "quoting-model"
    assert isinstance(ingested.generator, QuotingGenerator)
    assert ingested.generator.requests[-1].prompt_version == "rag_v1"


async def test_a_chat_over_a_collection_is_routed_by_its_model(ingested: Pipeline, serve: Callable) -> None:
    client = await serve(ingested)
    messages = [{"role": "user", "content": "What is green tea made from?"}]
    grounded = await client.post(
        "/v1/chat/completions", json={"model": "large", "messages": messages, "collection": "c"}
    )
    assert grounded.status_code == 200
    assert grounded.headers["X-Model"] == "quoting-model"
    assert "X-Variant" not in grounded.headers, "a named model takes no part in experiments"
    assert isinstance(ingested.generator, QuotingGenerator)
    assert ingested.generator.requests[-1].model == "large"
    body = {"messages": messages, "collection": "c", "stream": True, "user": user_in("treatment")}
    async with client.stream("POST", "/v1/chat/completions", json=body) as streamed:
        await streamed.aread()
    assert streamed.headers["X-Variant"] == "treatment"
    assert ingested.generator.requests[-1].prompt_version == "rag_v2"


async def test_naming_a_model_not_allowed_is_a_problem_listing_the_allowed(
    ingested: Pipeline, serve: Callable
) -> None:
    client = await serve(ingested)
    messages = [{"role": "user", "content": "hi"}]
    for path, body in [
        ("/v1/rag/query", QUERY | {"model": "gpt-5"}),
        ("/v1/chat/completions", {"model": "gpt-5", "messages": messages, "collection": "c"}),
        ("/v1/chat/completions", {"model": "gpt-5", "messages": messages}),
    ]:
        response = await client.post(path, json=body)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["allowed_models"] == ["small", "large"]


@pytest.fixture
async def cached(pipeline: Pipeline, redis_server: RedisServer) -> AsyncIterator[Pipeline]:
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushdb()
    connection = redis_cache.connect(redis_server.url, 0.5)
    with_redis = dataclasses.replace(pipeline, cache=RedisCache(connection, ttl_s=60))
    await ingest_service.ingest(
        IngestRequest(collection="t-default--c", documents=[TEA]), pipeline=with_redis
    )
    yield routed(with_redis)
    await connection.aclose()


async def test_variants_never_share_a_cached_answer(cached: Pipeline) -> None:
    async def ask(user: str) -> RagAnswer:
        question = RagQuery.model_validate(QUERY | {"collection": "t-default--c", "user": user})
        pipeline = model_router.route(question, "default", cached).pipeline
        return await rag_service.answer(question, pipeline=pipeline)

    control, treatment = users_in("control"), users_in("treatment")
    assert not (await ask(control[0])).cached
    assert not (await ask(treatment[0])).cached, "the other variant asks its own model and prompt"
    assert (await ask(treatment[1])).cached, "another user of the same variant shares its answers"
    assert (await ask(control[1])).cached
    assert generated(cached) == 2
