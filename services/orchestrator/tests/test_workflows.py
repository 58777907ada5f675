from __future__ import annotations

import asyncio
import json

import pytest

from rag_common.contracts import ChatCompletionRequest, DocumentIn, IngestRequest, RagQuery
from rag_common.errors import SafetyBlocked, UnprocessableContent
from rag_orchestrator import chat as chat_service
from rag_orchestrator import ingest as ingest_service
from rag_orchestrator import rag as rag_service
from rag_orchestrator import streaming
from rag_orchestrator.pipeline import Pipeline

from .fakes import BagOfWordsEmbedder, KeywordSafety, MemoryRetriever, QuotingGenerator

DOCS = [
    DocumentIn(
        id="tea",
        text="Green tea is made from unoxidised leaves of Camellia sinensis.",
        metadata={"lang": "en"},
    ),
    DocumentIn(
        id="rail", text="The Trans-Siberian railway runs from Moscow to Vladivostok.", metadata={"lang": "en"}
    ),
    DocumentIn(text="Le thé vert est fait de feuilles non oxydées.", metadata={"lang": "fr"}),
]


async def ingest(pipeline: Pipeline) -> None:
    await ingest_service.ingest(IngestRequest(collection="c", documents=DOCS), pipeline=pipeline)


async def test_ingest_embeds_in_batches_and_upserts_every_chunk(pipeline: Pipeline) -> None:
    response = await ingest_service.ingest(IngestRequest(collection="c", documents=DOCS), pipeline=pipeline)
    assert [d.document_id for d in response.documents][:2] == ["tea", "rail"]
    assert len(response.documents[2].document_id) == 32, "an id-less document gets its content hash"
    assert isinstance(pipeline.retriever, MemoryRetriever)
    assert len(pipeline.retriever.collections["c"]) == response.chunks == 3
    assert isinstance(pipeline.embedder, BagOfWordsEmbedder)
    assert [len(batch) for batch in pipeline.embedder.calls] == [2, 1]


async def test_reingesting_the_same_documents_creates_no_duplicates(pipeline: Pipeline) -> None:
    await ingest(pipeline)
    await ingest(pipeline)
    assert isinstance(pipeline.retriever, MemoryRetriever)
    assert len(pipeline.retriever.collections["c"]) == 3


async def test_answer_cites_the_retrieved_chunks_in_rank_order(pipeline: Pipeline) -> None:
    await ingest(pipeline)
    answer = await rag_service.answer(
        RagQuery(question="What is green tea made from?", collection="c"), pipeline=pipeline
    )
    assert answer.citations[0].document_id == "tea"
    assert [c.index for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert answer.answer.endswith("[1]")
    assert answer.model == "quoting-model"
    assert answer.safety == {"input": "allow", "output": "allow"}
    tea = DOCS[0].text
    assert tea[answer.citations[0].start : answer.citations[0].end] == answer.citations[0].text


async def test_metadata_filter_limits_the_sources(pipeline: Pipeline) -> None:
    await ingest(pipeline)
    query = RagQuery(question="green tea leaves", collection="c", filter={"lang": "fr"})
    answer = await rag_service.answer(query, pipeline=pipeline)
    assert {c.metadata["lang"] for c in answer.citations} == {"fr"}


async def test_no_hits_answers_without_calling_the_model(pipeline: Pipeline) -> None:
    await ingest(pipeline)
    query = RagQuery(question="anything", collection="c", filter={"lang": "de"})
    answer = await rag_service.answer(query, pipeline=pipeline)
    assert answer.answer == rag_service.NO_CONTEXT_ANSWER
    assert answer.citations == []
    assert isinstance(pipeline.generator, QuotingGenerator)
    assert pipeline.generator.requests == []


async def test_blocked_question_raises_before_generation(pipeline: Pipeline) -> None:
    await ingest(pipeline)
    with pytest.raises(SafetyBlocked) as caught:
        await rag_service.answer(RagQuery(question="a forbidden question", collection="c"), pipeline=pipeline)
    assert caught.value.status_code == 400
    assert "not allowed" in caught.value.detail
    assert isinstance(pipeline.generator, QuotingGenerator)
    assert pipeline.generator.requests == []


async def test_redacted_question_is_what_the_model_sees(pipeline: Pipeline) -> None:
    await ingest(pipeline)
    await rag_service.answer(
        RagQuery(question="green tea for bob@example.com", collection="c"), pipeline=pipeline
    )
    assert isinstance(pipeline.generator, QuotingGenerator)
    assert pipeline.generator.requests[0].question == "green tea for <EMAIL_ADDRESS>"


async def test_blocked_output_is_withheld(pipeline: Pipeline) -> None:
    forbidden = DocumentIn(id="bad", text="forbidden knowledge about green tea")
    await ingest_service.ingest(IngestRequest(collection="c", documents=[forbidden]), pipeline=pipeline)
    answer = await rag_service.answer(RagQuery(question="green tea", collection="c"), pipeline=pipeline)
    assert answer.answer == rag_service.WITHHELD_ANSWER
    assert answer.safety["output"] == "block"


async def test_input_safety_runs_concurrently_with_embedding(pipeline: Pipeline) -> None:
    """The safety check waits for the embedder to start; run one after the other, this would time out."""
    await ingest(pipeline)
    gate = asyncio.Event()
    safety = KeywordSafety(gate=gate)
    embedder = BagOfWordsEmbedder()
    original = embedder.embed

    async def embed_and_open_gate(texts: list[str]) -> list[list[float]]:
        gate.set()
        return await original(texts)

    embedder.embed = embed_and_open_gate  # type: ignore[method-assign]
    concurrent = Pipeline(
        embedder=embedder,
        retriever=pipeline.retriever,
        generator=pipeline.generator,
        safety=safety,
        settings=pipeline.settings,
        cache=pipeline.cache,
    )
    answer = await rag_service.answer(RagQuery(question="green tea", collection="c"), pipeline=concurrent)
    assert answer.citations


async def test_stream_sends_citations_then_deltas_then_done(pipeline: Pipeline) -> None:
    await ingest(pipeline)
    events = await streaming.answer_stream(RagQuery(question="green tea", collection="c"), pipeline=pipeline)
    parsed = []
    async for raw in events:
        name, data = raw.strip().split("\n")
        parsed.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    assert parsed[0][0] == "citations"
    assert parsed[0][1]["citations"][0]["document_id"] == "tea"
    assert "".join(d["content"] for n, d in parsed if n == "delta").endswith("[1]")
    assert parsed[-1][0] == "done"
    assert parsed[-1][1]["usage"]["completion_tokens"] > 0


async def test_chat_with_collection_is_rag_with_citations(pipeline: Pipeline) -> None:
    await ingest(pipeline)
    request = ChatCompletionRequest.model_validate(
        {
            "messages": [{"role": "user", "content": "Where does the railway run?"}],
            "collection": "c",
            "top_k": 1,
        }
    )
    response = await chat_service.complete(request, pipeline=pipeline)
    assert response.model_extra is not None
    assert [c["document_id"] for c in response.model_extra["citations"]] == ["rail"]


async def test_plain_chat_has_no_citations(pipeline: Pipeline) -> None:
    request = ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": "hi"}]})
    response = await chat_service.complete(request, pipeline=pipeline)
    assert response.choices[0].message.content == "echo: hi"
    assert "citations" not in (response.model_extra or {})


async def test_chat_stream_puts_citations_on_the_first_chunk_and_ends_with_done(pipeline: Pipeline) -> None:
    await ingest(pipeline)
    request = ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": "green tea"}], "collection": "c", "stream": True}
    )
    lines = [line async for line in await chat_service.complete_stream(request, pipeline=pipeline)]
    assert lines[-1] == chat_service.STREAM_END
    first = json.loads(lines[0].removeprefix("data: "))
    assert first["citations"][0]["document_id"] == "tea"
    assert "citations" not in json.loads(lines[1].removeprefix("data: "))


async def test_rag_chat_with_invalid_top_k_is_422(pipeline: Pipeline) -> None:
    request = ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": "x"}], "collection": "c", "top_k": 0}
    )
    with pytest.raises(UnprocessableContent, match="top_k"):
        await chat_service.complete(request, pipeline=pipeline)
