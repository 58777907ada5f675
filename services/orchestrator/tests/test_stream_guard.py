"""Output checks while the answer streams: windows are held back, checked, then released."""

from __future__ import annotations

import dataclasses
import json

from rag_common.contracts import ChatCompletionRequest, DocumentIn, IngestRequest, RagQuery
from rag_orchestrator import chat as chat_service
from rag_orchestrator import ingest as ingest_service
from rag_orchestrator import streaming
from rag_orchestrator.pipeline import Pipeline

QUESTION = RagQuery(question="green tea", collection="c", top_k=1)


async def ingest(pipeline: Pipeline, text: str) -> None:
    document = DocumentIn(id="doc", text=text)
    await ingest_service.ingest(IngestRequest(collection="c", documents=[document]), pipeline=pipeline)


async def events(pipeline: Pipeline) -> list[tuple[str, dict[str, object]]]:
    parsed = []
    async for raw in await streaming.answer_stream(QUESTION, pipeline=pipeline):
        name, data = raw.strip().split("\n")
        parsed.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return parsed


async def test_a_violation_ends_the_stream_before_its_sentence_is_sent(pipeline: Pipeline) -> None:
    await ingest(pipeline, "Green tea is made from leaves. Then forbidden words come in this sentence.")
    parsed = await events(pipeline)
    sent = "".join(str(d["content"]) for n, d in parsed if n == "delta")
    assert sent == "Green tea is made from leaves. "
    assert "forbidden" not in sent
    name, done = parsed[-1]
    assert name == "done"
    assert done["finish_reason"] == "content_filter"
    assert done["safety"] == {"input": "allow", "output": "block"}


async def test_text_is_released_redacted_a_sentence_at_a_time(pipeline: Pipeline) -> None:
    await ingest(pipeline, "Green tea questions go to tea@example.com today. Green tea is made from leaves.")
    parsed = await events(pipeline)
    deltas = [str(d["content"]) for n, d in parsed if n == "delta"]
    assert deltas[0] == "Green tea questions go to <EMAIL_ADDRESS> today. "
    assert "tea@example.com" not in "".join(deltas)
    assert parsed[-1][1]["safety"] == {"input": "allow", "output": "redact"}


async def test_the_openai_stream_ends_with_content_filter_on_a_violation(pipeline: Pipeline) -> None:
    await ingest(pipeline, "Green tea is made from leaves. Then forbidden words come in this sentence.")
    request = ChatCompletionRequest.model_validate(
        {
            "messages": [{"role": "user", "content": "green tea"}],
            "collection": "c",
            "top_k": 1,
            "stream": True,
        }
    )
    lines = [line async for line in await chat_service.complete_stream(request, pipeline=pipeline)]
    assert lines[-1] == chat_service.STREAM_END
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Green tea is made from leaves. "
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"


async def test_without_the_guard_text_streams_at_once_and_is_checked_after(pipeline: Pipeline) -> None:
    await ingest(pipeline, "Green tea is made from leaves. Then forbidden words come in this sentence.")
    unguarded = pipeline.settings.model_copy(update={"stream_guard": False})
    parsed = await events(dataclasses.replace(pipeline, settings=unguarded))
    deltas = [str(d["content"]) for n, d in parsed if n == "delta"]
    assert len(deltas) > 3, "token by token, nothing held back"
    assert "forbidden" in "".join(deltas), "the price of switching the guard off"
    assert parsed[-1][1]["finish_reason"] == "content_filter"
