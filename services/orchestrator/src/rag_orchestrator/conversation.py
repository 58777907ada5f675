"""Follow-up questions: with a `session_id`, the conversation so far makes a question standalone
(one LLM call) before the cache, retrieval and generation see it; each answered turn is kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rag_common.contracts import ChatCompletionRequest, ChatMessage, RagAnswer, RagQuery, SafetyVerdict

from . import guard, tenancy, timing
from .memory import Turn, session_key
from .pipeline import Pipeline

CONDENSE_PROMPT = (
    "Rewrite the user's follow-up question so that it can be understood without the conversation: "
    "replace pronouns and references with what they refer to, keep the language and the meaning, "
    "and do not answer it. Reply with the rewritten question only."
)
CONDENSE_MAX_TOKENS = 96
ANSWER_CHARS_IN_PROMPT = 600


@dataclass(frozen=True, slots=True)
class Conversation:
    """Where a query stands in its session; `key` is None without a session_id."""

    asked: str
    standalone: str
    key: str | None = None
    available: bool = False
    turns: list[Turn] = field(default_factory=list)
    remembered: str = ""  # the question as memory keeps it: after the input check's redaction

    @property
    def status(self) -> Literal["on", "off"] | None:
        if self.key is None:
            return None
        return "on" if self.available else "off"

    def fields(self) -> dict[str, str | None]:
        """What an answer says about its conversation (never what a cached copy said about another)."""
        rewritten = self.standalone if self.standalone != self.asked else None
        return {"memory": self.status, "standalone_question": rewritten}

    def annotate(self, result: RagAnswer) -> RagAnswer:
        return result.model_copy(update=self.fields())


async def recall(query: RagQuery, pipeline: Pipeline) -> tuple[RagQuery, Conversation]:
    """The query to answer (its question standalone) and its conversation."""
    if query.session_id is None:
        return query, Conversation(asked=query.question, standalone=query.question)
    key = session_key(tenancy.current() or tenancy.DEFAULT_TENANT, query.session_id)
    async with timing.stage("memory"):
        turns = await pipeline.memory.turns(key)
    if turns is None:
        return query, Conversation(query.question, query.question, key)
    # Checked first, so neither memory nor the condense prompt ever holds what the policy redacts.
    remembered = (await _check_asked(pipeline, query.question)).text
    if not turns:
        return query, Conversation(query.question, query.question, key, True, remembered=remembered)
    standalone = await condense(remembered, turns, pipeline)
    conversation = Conversation(query.question, standalone, key, True, turns, remembered)
    return query.model_copy(update={"question": standalone}), conversation


async def remember(conversation: Conversation, answer: str, pipeline: Pipeline) -> None:
    if conversation.key is None or not conversation.available:
        return
    async with timing.stage("memory"):
        await pipeline.memory.append(conversation.key, Turn(question=conversation.remembered, answer=answer))


async def _check_asked(pipeline: Pipeline, question: str) -> SafetyVerdict:
    """The follow-up as the user wrote it is checked too: its rewrite must not launder it."""
    async with timing.stage("safety_in"):
        return await guard.check(pipeline, question, "input")


async def condense(question: str, turns: list[Turn], pipeline: Pipeline) -> str:
    settings = pipeline.settings
    request = ChatCompletionRequest(
        model=settings.llm_model,
        messages=[
            ChatMessage(role="system", content=CONDENSE_PROMPT),
            ChatMessage(role="user", content=_condense_input(question, turns)),
        ],
        max_tokens=CONDENSE_MAX_TOKENS,
        temperature=0.0,
    )
    async with timing.stage("condense", service="llm", timeout_s=settings.llm_timeout_s):
        completion = await pipeline.generator.chat(request)
    return _standalone_from(completion.choices[0].message.content) or question


def _condense_input(question: str, turns: list[Turn]) -> str:
    lines = ["Conversation:"]
    for turn in turns:
        lines += [f"User: {turn.question}", f"Assistant: {turn.answer[:ANSWER_CHARS_IN_PROMPT]}"]
    return "\n".join([*lines, "", f"Follow-up question: {question}", "", "Standalone question:"])


def _standalone_from(reply: str) -> str:
    """The first non-empty line, without a repeated label or quotes; empty when the model said nothing."""
    for line in reply.splitlines():
        text = line.strip().removeprefix("Standalone question:").strip().strip("\"'").strip()
        if text:
            return text
    return ""
