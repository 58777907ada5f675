"""Safety policies as the orchestrator applies them: the key's policy named to the safety service,
fail-open decided locally per policy or tenant, and reversible redaction restored for the asker only."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from rag_common.contracts import (
    ChatCompletionChunk,
    ChunkChoice,
    ChunkDelta,
    DocumentIn,
    GroundedCompletionRequest,
    IngestRequest,
    RagQuery,
    SafetyVerdict,
)
from rag_common.errors import UpstreamError, UpstreamUnavailable
from rag_common.http import ServiceClient
from rag_devstack.redis_server import RedisServer
from rag_orchestrator import deanonymise, safety_policy, streaming, tenancy
from rag_orchestrator import ingest as ingest_service
from rag_orchestrator import rag as rag_service
from rag_orchestrator.adapters import redis_cache
from rag_orchestrator.adapters.http_clients import SafetyClient
from rag_orchestrator.adapters.redis_cache import RedisCache
from rag_orchestrator.adapters.redis_memory import RedisMemory
from rag_orchestrator.deanonymise import Pseudonyms, StreamRestorer
from rag_orchestrator.pipeline import Pipeline
from rag_orchestrator.settings import Settings

from .fakes import KeywordSafety, QuotingGenerator, UnreachableSafety

EMAIL = "jane.roe@example.com"
TEA = DocumentIn(id="tea", text="Green tea is made from unoxidised leaves of Camellia sinensis.")
QUESTION = RagQuery(question=f"What is green tea made from? Reply to {EMAIL}", collection="c", top_k=1)


class NumberingSafety(KeywordSafety):
    """A reversible policy: questions get `<EMAIL_ADDRESS_n>` and the mapping; answers as before."""

    async def check(self, text: str, direction: str, tenant: str | None = None) -> SafetyVerdict:
        if direction == "output":
            return await super().check(text, direction, tenant)
        self.checked.append((direction, text))
        mapping: dict[str, str] = {}
        words = []
        for word in text.split(" "):
            if "@" in word:
                placeholder = next((p for p, v in mapping.items() if v == word), None)
                placeholder = placeholder or f"<EMAIL_ADDRESS_{len(mapping) + 1}>"
                mapping[placeholder] = word
                word = placeholder
            words.append(word)
        verdict = "redact" if mapping else "allow"
        return SafetyVerdict(verdict=verdict, text=" ".join(words), mapping=mapping or None)


class EchoingGenerator(QuotingGenerator):
    """Writes the question (placeholders and all) into its answer; streams it 6 characters at a time,
    so placeholders arrive split across chunks."""

    def _answer(self, request: GroundedCompletionRequest) -> str:
        return f"Noted: {request.question} [1]"

    async def _stream(self, text: str) -> AsyncIterator[ChatCompletionChunk]:
        for start in range(0, len(text), 6):
            last = start + 6 >= len(text)
            yield ChatCompletionChunk(
                id="chatcmpl-test",
                model=self.model,
                choices=[
                    ChunkChoice(
                        delta=ChunkDelta(content=text[start : start + 6]),
                        finish_reason="stop" if last else None,
                    )
                ],
            )


@pytest.fixture
def policy_scope() -> Iterator[None]:
    yield
    safety_policy.set_current(None)
    tenancy.set_current(tenancy.DEFAULT_TENANT)


@pytest.fixture
async def reversible(pipeline: Pipeline, redis_server: RedisServer) -> AsyncIterator[Pipeline]:
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushdb()
    connection = redis_cache.connect(redis_server.url, 0.5)
    unguarded = pipeline.settings.model_copy(update={"stream_guard": False})
    with_redis = dataclasses.replace(
        pipeline,
        safety=NumberingSafety(),
        generator=EchoingGenerator(),
        settings=unguarded,
        cache=RedisCache(connection, ttl_s=60),
        memory=RedisMemory(connection, max_turns=2, ttl_s=60),
    )
    await ingest_service.ingest(IngestRequest(collection="c", documents=[TEA]), pipeline=with_redis)
    yield with_redis
    await connection.aclose()


def everything_in(redis_server: RedisServer) -> bytes:
    """Every key and value in Redis, as bytes (DUMP would compress long values)."""
    read = {
        b"string": lambda r, k: [r.get(k)],
        b"list": lambda r, k: r.lrange(k, 0, -1),
        b"hash": lambda r, k: [b for pair in r.hgetall(k).items() for b in pair],
        b"set": lambda r, k: list(r.smembers(k)),
        b"zset": lambda r, k: r.zrange(k, 0, -1),
    }
    with redis.Redis.from_url(redis_server.url) as r:
        return b"".join(key + b"".join(read[r.type(key)](r, key)) for key in r.keys("*"))


async def streamed(query: RagQuery, pipeline: Pipeline) -> list[tuple[str, dict[str, object]]]:
    parsed = []
    async for raw in await streaming.answer_stream(query, pipeline=pipeline):
        name, data = raw.strip().split("\n", 1)
        parsed.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return parsed


def deltas(events: list[tuple[str, dict[str, object]]]) -> list[str]:
    return [str(data["content"]) for name, data in events if name == "delta"]


# --- fail open or closed, per policy ---------------------------------------------------------


def test_fail_open_follows_the_keys_policy_else_the_tenant_else_the_default() -> None:
    settings = Settings(safety_fail_open_policies=["internal"], safety_fail_open_tenants=["staff"])
    decide = safety_policy.fails_open
    assert decide(settings, policy="internal", tenant="acme")
    assert not decide(settings, policy="strict", tenant="staff"), "the key's policy wins over its tenant"
    assert decide(settings, policy=None, tenant="staff")
    assert not decide(settings, policy=None, tenant="acme")
    assert decide(Settings(safety_fail_open=True), policy="strict", tenant="acme")


def test_fail_open_lists_read_comma_separated_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_SAFETY_FAIL_OPEN_POLICIES", "internal, beta")
    monkeypatch.setenv("ORCHESTRATOR_SAFETY_FAIL_OPEN_TENANTS", '["staff"]')
    settings = Settings()
    assert (settings.safety_fail_open_policies, settings.safety_fail_open_tenants) == (
        ["internal", "beta"],
        ["staff"],
    )


async def test_safety_down_policy_a_gets_503_naming_safety_policy_b_an_unchecked_answer(
    pipeline: Pipeline, policy_scope: None
) -> None:
    await ingest_service.ingest(IngestRequest(collection="c", documents=[TEA]), pipeline=pipeline)
    settings = pipeline.settings.model_copy(update={"safety_fail_open_policies": ["internal"]})
    down = dataclasses.replace(pipeline, safety=UnreachableSafety(), settings=settings)
    safety_policy.set_current("strict")
    with pytest.raises(UpstreamUnavailable) as closed:
        await rag_service.answer(QUESTION, pipeline=down)
    assert (closed.value.status_code, closed.value.service) == (503, "safety")
    safety_policy.set_current("internal")
    opened = await rag_service.answer(QUESTION, pipeline=down)
    assert opened.safety == {"input": "unchecked", "output": "unchecked"}
    assert opened.answer.startswith("Green tea")


async def test_safety_down_a_listed_tenant_without_a_key_policy_fails_open_streamed_too(
    pipeline: Pipeline, policy_scope: None
) -> None:
    await ingest_service.ingest(IngestRequest(collection="c", documents=[TEA]), pipeline=pipeline)
    settings = pipeline.settings.model_copy(update={"safety_fail_open_tenants": ["staff"]})
    down = dataclasses.replace(pipeline, safety=UnreachableSafety(), settings=settings)
    tenancy.set_current("staff")
    events = await streamed(QUESTION, down)
    assert events[-1][1]["safety"] == {"input": "unchecked", "output": "unchecked"}
    tenancy.set_current("acme")
    with pytest.raises(UpstreamUnavailable):
        await streamed(QUESTION, down)


# --- the key's policy on the wire --------------------------------------------------------------


def safety_stand_in(seen: list[dict[str, object]]) -> FastAPI:
    """Records each check's body; refuses the policy `typo` as the safety service does (422)."""
    app = FastAPI()

    @app.post("/v1/check")
    async def check(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append(body)
        if body.get("policy") == "typo":
            problem = {"type": "about:blank", "title": "Unprocessable Content", "status": 422,
                       "detail": "No safety policy named 'typo'.", "policy": "typo"}  # fmt: skip
            return JSONResponse(problem, status_code=422, media_type="application/problem+json")
        return JSONResponse({"verdict": "allow", "text": body["text"]})

    return app


async def test_the_safety_client_names_the_requests_policy_and_passes_a_422_on(policy_scope: None) -> None:
    seen: list[dict[str, object]] = []
    transport = httpx.ASGITransport(app=safety_stand_in(seen))
    client = ServiceClient("safety", "http://safety", transport=transport)
    safety = SafetyClient(client)
    try:
        safety_policy.set_current("strict")
        await safety.check("hi", "input", "acme")
        safety_policy.set_current(None)
        await safety.check("hi", "input", "acme")
        safety_policy.set_current("typo")
        with pytest.raises(UpstreamError) as refused:
            await safety.check("hi", "input", "acme")
    finally:
        await client.aclose()
    assert [(b["tenant"], b.get("policy")) for b in seen] == [
        ("acme", "strict"),
        ("acme", None),
        ("acme", "typo"),
    ]
    assert refused.value.status_code == 422
    assert "'typo'" in refused.value.detail


def test_a_malformed_policy_header_is_a_400() -> None:
    assert safety_policy.policy_from("strict") == "strict"
    assert safety_policy.policy_from(None) is safety_policy.policy_from("") is None
    with pytest.raises(Exception, match="X-Safety-Policy") as bad:
        safety_policy.policy_from("no spaces allowed")
    assert getattr(bad.value, "status_code", None) == 400


# --- reversible redaction ----------------------------------------------------------------------


async def test_the_asker_gets_their_value_back_while_everything_downstream_saw_a_placeholder(
    reversible: Pipeline,
) -> None:
    result = await rag_service.answer(QUESTION, pipeline=reversible, restore_pii=True)
    assert result.answer == f"Noted: What is green tea made from? Reply to {EMAIL} [1]"
    assert isinstance(reversible.generator, EchoingGenerator)
    assert reversible.generator.requests[0].question.endswith("Reply to <EMAIL_ADDRESS_1>")
    assert isinstance(reversible.safety, NumberingSafety)
    outputs = [text for direction, text in reversible.safety.checked if direction == "output"]
    assert outputs
    assert all(EMAIL not in text and "<EMAIL_ADDRESS_1>" in text for text in outputs)


async def test_the_answer_cache_holds_placeholders_and_a_cached_answer_is_restored_again(
    reversible: Pipeline, redis_server: RedisServer
) -> None:
    first = await rag_service.answer(QUESTION, pipeline=reversible, restore_pii=True)
    stored = everything_in(redis_server)
    again = await rag_service.answer(QUESTION, pipeline=reversible, restore_pii=True)
    assert b"<EMAIL_ADDRESS_1>" in stored
    assert EMAIL.encode() not in stored
    assert again.cached
    assert again.answer == first.answer
    assert EMAIL in again.answer


async def test_conversation_memory_keeps_the_answer_with_placeholders(
    reversible: Pipeline, redis_server: RedisServer
) -> None:
    query = QUESTION.model_copy(update={"session_id": "s1"})
    result = await rag_service.answer(query, pipeline=reversible, restore_pii=True)
    assert EMAIL in result.answer
    key = next(k for k in redis.Redis.from_url(redis_server.url).keys("*") if b"s1" in k)
    with redis.Redis.from_url(redis_server.url) as r:
        turns = [json.loads(t) for t in r.lrange(key, 0, -1)]
    assert [t["answer"] for t in turns] == [result.answer.replace(EMAIL, "<EMAIL_ADDRESS_1>")]


async def test_placeholders_stay_unless_the_caller_asks_to_restore(reversible: Pipeline) -> None:
    """A generation job's answer is stored in Redis, so its worker never restores."""
    result = await rag_service.answer(QUESTION, pipeline=reversible)
    assert EMAIL not in result.answer
    assert "<EMAIL_ADDRESS_1>" in result.answer


async def test_a_streamed_answer_is_restored_though_its_placeholder_arrives_in_pieces(
    reversible: Pipeline, redis_server: RedisServer
) -> None:
    events = await streamed(QUESTION, reversible)
    pieces = deltas(events)
    assert "".join(pieces) == f"Noted: What is green tea made from? Reply to {EMAIL} [1]"
    assert not any("<EMAIL" in piece for piece in pieces)
    assert events[-1][0] == "done"
    assert EMAIL.encode() not in everything_in(redis_server)
    replayed = await streamed(QUESTION, reversible)
    assert "".join(deltas(replayed)) == "".join(pieces), "the cached copy is restored on replay too"


async def test_without_a_reversible_policy_the_stream_passes_through_untouched(pipeline: Pipeline) -> None:
    await ingest_service.ingest(IngestRequest(collection="c", documents=[TEA]), pipeline=pipeline)
    plain = dataclasses.replace(pipeline, generator=EchoingGenerator())
    events = await streamed(QUESTION, plain)
    assert "".join(deltas(events)) == "Noted: What is green tea made from? Reply to <EMAIL_ADDRESS> [1]"


def restorer() -> StreamRestorer:
    pseudonyms = Pseudonyms()
    pseudonyms.keep({"<EMAIL_ADDRESS_1>": EMAIL, "<PERSON_2>": "Jane"})
    return StreamRestorer(pseudonyms)


@pytest.mark.parametrize(
    "chunks",
    [
        ["Write to <EMAIL_ADDRESS_1> now"],
        ["Write to <", "EMAIL_ADDRESS_1> now"],
        ["Write to <EMAIL_", "ADDRESS_", "1", "> now"],
        ["Write to <EMAIL_ADDRESS_1", ">", " now"],
        ["Write", " to ", "<EMAIL_ADDRESS_1>", " now"],
    ],
)
def test_a_placeholder_split_anywhere_is_restored_whole(chunks: list[str]) -> None:
    restoring = restorer()
    out = [restoring.feed(chunk) for chunk in chunks] + [restoring.flush()]
    assert "".join(out) == f"Write to {EMAIL} now"
    assert not any("<" in piece for piece in out)


def test_text_that_only_looks_like_a_start_is_released_once_it_cannot_be_a_placeholder() -> None:
    restoring = restorer()
    assert restoring.feed("if a <") == "if a "
    assert restoring.feed(" b, <PERSON_2> and <b>") == "< b, Jane and <b>"
    assert restoring.feed(" ends <UNKNOWN_9>") == " ends <UNKNOWN_9>"
    assert restoring.feed(" then <PERS") == " then "
    assert restoring.flush() == "<PERS", "an unfinished start at the end goes out as written"


def test_pseudonyms_stay_out_of_reprs_and_verdict_reprs() -> None:
    pseudonyms = Pseudonyms()
    pseudonyms.keep({"<EMAIL_ADDRESS_1>": EMAIL})
    verdict = SafetyVerdict(verdict="redact", text="<EMAIL_ADDRESS_1>", mapping={"<EMAIL_ADDRESS_1>": EMAIL})
    assert EMAIL not in repr(pseudonyms) + repr(verdict)


async def test_a_mapping_outside_a_request_scope_is_dropped(reversible: Pipeline) -> None:
    """The OpenAI chat surface and follow-up checks run outside a scope: nothing is kept or restored."""
    assert deanonymise.current() is None
    retrieved = await rag_service.retrieve(QUESTION, reversible)
    assert retrieved.question.endswith("<EMAIL_ADDRESS_1>")
    assert deanonymise.current() is None
