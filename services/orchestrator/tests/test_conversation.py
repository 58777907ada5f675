"""Conversation memory against a real Redis: follow-ups made standalone, turns kept, trimmed, expired,
the answer cache keyed on the standalone question, sessions scoped by tenant."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from rag_common.contracts import (
    ChatChoice,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessage,
    DocumentIn,
    IngestRequest,
    RagQuery,
)
from rag_common.errors import SafetyBlocked
from rag_devstack.processes import free_port
from rag_devstack.redis_server import RedisServer, start_redis
from rag_orchestrator import ingest as ingest_service
from rag_orchestrator import rag as rag_service
from rag_orchestrator import streaming, tenancy, timing
from rag_orchestrator.adapters import redis_cache
from rag_orchestrator.adapters.redis_cache import RedisCache
from rag_orchestrator.adapters.redis_memory import PREFIX, RedisMemory
from rag_orchestrator.conversation import CONDENSE_PROMPT
from rag_orchestrator.memory import NoMemory, Turn
from rag_orchestrator.pipeline import Pipeline

from .fakes import BagOfWordsEmbedder, KeywordSafety, QuotingGenerator

TEA = DocumentIn(id="tea", text="Green tea is made from unoxidised leaves of Camellia sinensis.")
RAIL = DocumentIn(id="rail", text="The Trans-Siberian railway runs from Moscow to Vladivostok.")
REWRITES = {
    ("Tell me about green tea.", "What is it made from?"): "What is green tea made from?",
    (
        "Tell me about the Trans-Siberian railway.",
        "What is it made from?",
    ): "Where does the Trans-Siberian railway run?",
}


class CondensingGenerator(QuotingGenerator):
    """Rewrites a follow-up from the conversation's first question, as a script says; records the prompts."""

    def __init__(self) -> None:
        super().__init__()
        self.condensed: list[ChatCompletionRequest] = []

    async def chat(self, request: ChatCompletionRequest) -> ChatCompletionResponse:
        if request.messages[0].content != CONDENSE_PROMPT:
            return await super().chat(request)
        self.condensed.append(request)
        prompt = request.messages[-1].content
        first = prompt.split("User: ", 1)[1].split("\n", 1)[0]
        follow_up = prompt.split("Follow-up question: ", 1)[1].split("\n", 1)[0]
        rewritten = REWRITES.get((first, follow_up), follow_up)
        return ChatCompletionResponse(
            model=self.model,
            choices=[ChatChoice(message=ChatMessage(role="assistant", content=f'"{rewritten}"\n'))],
        )


@pytest.fixture
def flushed(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushdb()
        yield r


@pytest.fixture
async def remembering(
    pipeline: Pipeline, redis_server: RedisServer, flushed: redis.Redis
) -> AsyncIterator[Pipeline]:
    connection = redis_cache.connect(redis_server.url, 0.5)
    remembering = dataclasses.replace(
        pipeline,
        generator=CondensingGenerator(),
        cache=RedisCache(connection, ttl_s=60),
        memory=RedisMemory(connection, max_turns=2, ttl_s=60),
    )
    await ingest_service.ingest(IngestRequest(collection="c", documents=[TEA, RAIL]), pipeline=remembering)
    tenancy.set_current("acme")
    yield remembering
    await connection.aclose()


def ask(question: str, session: str | None = "s1") -> RagQuery:
    return RagQuery(question=question, collection="c", top_k=1, session_id=session)


def condenser(pipeline: Pipeline) -> CondensingGenerator:
    assert isinstance(pipeline.generator, CondensingGenerator)
    return pipeline.generator


async def test_a_follow_up_is_made_standalone_before_it_is_retrieved(remembering: Pipeline) -> None:
    first = await rag_service.answer(ask("Tell me about green tea."), pipeline=remembering)
    follow_up = await rag_service.answer(ask("What is it made from?"), pipeline=remembering)
    assert first.memory == "on"
    assert first.standalone_question is None, "a first question stands alone already"
    prompt = condenser(remembering).condensed[0].messages[-1].content
    assert "User: Tell me about green tea." in prompt
    assert f"Assistant: {first.answer}" in prompt
    assert follow_up.standalone_question == "What is green tea made from?"
    assert follow_up.memory == "on"
    assert isinstance(remembering.embedder, BagOfWordsEmbedder)
    assert remembering.embedder.calls[-1] == ["What is green tea made from?"]
    assert condenser(remembering).requests[-1].question == "What is green tea made from?"
    assert follow_up.citations[0].document_id == "tea"


async def test_turns_are_kept_as_asked_and_trimmed_to_the_last_n(
    remembering: Pipeline, flushed: redis.Redis
) -> None:
    for question in ("Tell me about green tea.", "What is it made from?", "Where is the railway?"):
        await rag_service.answer(ask(question), pipeline=remembering)
    raw = flushed.lrange(f"{PREFIX}acme:s1", 0, -1)
    kept = [Turn.model_validate_json(item) for item in raw]  # type: ignore[union-attr]
    assert [t.question for t in kept] == ["What is it made from?", "Where is the railway?"]
    assert kept[0].answer.startswith("Green tea is made from")
    assert 0 < flushed.ttl(f"{PREFIX}acme:s1") <= 60  # type: ignore[operator]


async def test_memory_and_the_condense_prompt_hold_the_question_as_redacted_never_raw_pii(
    remembering: Pipeline, flushed: redis.Redis
) -> None:
    await rag_service.answer(ask("Tell me about green tea, mail ann@example.com"), pipeline=remembering)
    await rag_service.answer(ask("What is it made from? cc bob@example.com"), pipeline=remembering)
    stored = b" ".join(flushed.lrange(f"{PREFIX}acme:s1", 0, -1))  # type: ignore[arg-type]
    assert b"@example.com" not in stored
    assert b"<EMAIL_ADDRESS>" in stored
    prompt = condenser(remembering).condensed[0].messages[-1].content
    assert "@example.com" not in prompt
    assert "Follow-up question: What is it made from? cc <EMAIL_ADDRESS>" in prompt


async def test_a_conversation_is_forgotten_once_its_ttl_passes(
    redis_server: RedisServer, flushed: redis.Redis
) -> None:
    connection = redis_cache.connect(redis_server.url, 0.5)
    memory = RedisMemory(connection, max_turns=4, ttl_s=1)
    assert await memory.append("acme:short", Turn(question="q", answer="a"))
    assert await memory.turns("acme:short") == [Turn(question="q", answer="a")]
    deadline = time.monotonic() + 5
    while await memory.turns("acme:short") and time.monotonic() < deadline:
        flushed.ping()  # poll Redis until the key expires (no fixed sleep)
    assert await memory.turns("acme:short") == []
    await connection.aclose()


async def test_the_answer_cache_keys_on_the_standalone_question(remembering: Pipeline) -> None:
    await rag_service.answer(ask("Tell me about green tea.", "tea"), pipeline=remembering)
    await rag_service.answer(ask("Tell me about the Trans-Siberian railway.", "rail"), pipeline=remembering)
    about_tea = await rag_service.answer(ask("What is it made from?", "tea"), pipeline=remembering)
    about_rail = await rag_service.answer(ask("What is it made from?", "rail"), pipeline=remembering)
    assert not about_rail.cached, "the same words in another conversation are another question"
    assert about_rail.standalone_question == "Where does the Trans-Siberian railway run?"
    assert about_rail.citations[0].document_id == "rail"
    standalone = await rag_service.answer(ask("What is green tea made from?", None), pipeline=remembering)
    assert standalone.cached, "the rewritten follow-up and the same question asked alone share an entry"
    assert standalone.answer == about_tea.answer
    assert standalone.memory is None
    assert standalone.standalone_question is None


async def test_sessions_of_the_same_name_are_separate_per_tenant(
    remembering: Pipeline, flushed: redis.Redis
) -> None:
    await rag_service.answer(ask("Tell me about green tea."), pipeline=remembering)
    tenancy.set_current("globex")
    other = await rag_service.answer(ask("What is it made from?"), pipeline=remembering)
    assert other.standalone_question is None, "globex's s1 has no turns of acme's s1"
    assert condenser(remembering).condensed == []
    assert sorted(flushed.keys(f"{PREFIX}*")) == [f"{PREFIX}acme:s1".encode(), f"{PREFIX}globex:s1".encode()]


async def test_without_redis_memory_is_off_and_the_question_is_answered_alone(
    remembering: Pipeline, tmp_path: Path
) -> None:
    assert (await rag_service.answer(ask("Tell me about green tea."), pipeline=remembering)).memory == "on"
    server = start_redis(free_port(), tmp_path / "redis", tmp_path / "redis.log")
    connection = redis_cache.connect(server.url, 0.2)
    server.stop()
    away = dataclasses.replace(remembering, memory=RedisMemory(connection, max_turns=2, ttl_s=60))
    answer = await rag_service.answer(ask("What is green tea made from?"), pipeline=away)
    assert answer.memory == "off"
    assert answer.citations[0].document_id == "tea"
    assert condenser(remembering).condensed == []
    no_store = dataclasses.replace(remembering, memory=NoMemory())
    assert (await rag_service.answer(ask("Anything?"), pipeline=no_store)).memory == "off"
    await connection.aclose()


async def test_a_blocked_follow_up_is_refused_and_not_remembered(
    remembering: Pipeline, flushed: redis.Redis
) -> None:
    await rag_service.answer(ask("Tell me about green tea."), pipeline=remembering)
    assert isinstance(remembering.safety, KeywordSafety)
    with pytest.raises(SafetyBlocked):
        await rag_service.answer(ask("Is it forbidden?"), pipeline=remembering)
    assert flushed.llen(f"{PREFIX}acme:s1") == 1


async def test_a_streamed_follow_up_reports_its_conversation_and_is_remembered(
    remembering: Pipeline, flushed: redis.Redis
) -> None:
    await rag_service.answer(ask("Tell me about green tea."), pipeline=remembering)
    timing.begin()
    events = [
        e async for e in await streaming.answer_stream(ask("What is it made from?"), pipeline=remembering)
    ]
    done = json.loads(events[-1].split("data: ")[1])
    assert done["standalone_question"] == "What is green tea made from?"
    assert done["memory"] == "on"
    assert {"condense", "embed", "retrieve", "generate", "stream", "total"} <= set(done["timings"])
    last = Turn.model_validate_json(flushed.lrange(f"{PREFIX}acme:s1", -1, -1)[0])  # type: ignore[index]
    assert last.question == "What is it made from?"
    assert last.answer.startswith("Green tea is made from")
