"""LangChain's OpenAI integration pointed at the gateway: chat (invoke, stream, grounded) and embeddings."""

from __future__ import annotations

import math
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from .conftest import API_KEY, Stack

pytestmark = pytest.mark.e2e

CHAT_MODEL = "smollm2-135m-instruct"
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
COLLECTION = "langchain-docs"
DOCUMENTS = [
    {
        "id": "lighthouses",
        "text": (
            "The Tower of Hercules in A Coruna, Spain, is the oldest Roman lighthouse still in use. "
            "It was built in the 1st century and stands 55 metres tall."
        ),
    },
    {
        "id": "tea",
        "text": (
            "Green tea and black tea come from the same plant, Camellia sinensis. "
            "Black tea is oxidised before drying; green tea is not."
        ),
    },
]


def chat(stack: Stack, **options: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model=CHAT_MODEL,
        base_url=f"{stack.gateway_url}/v1",
        api_key=API_KEY,
        max_tokens=32,
        max_retries=2,  # the SDK's own retry of a 503, e.g. a cold safety model on a loaded machine
        timeout=120,
        **options,
    )


def embeddings(stack: Stack) -> OpenAIEmbeddings:
    # tiktoken would download its BPE files at first use; the gateway counts tokens itself.
    return OpenAIEmbeddings(
        model=EMBEDDING_MODEL,
        base_url=f"{stack.gateway_url}/v1",
        api_key=API_KEY,
        tiktoken_enabled=False,
        check_embedding_ctx_length=False,
        max_retries=0,
        timeout=120,
    )


@pytest.fixture(scope="module")
def ingested(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.gateway_url}/v1/documents",
        json={"collection": COLLECTION, "documents": DOCUMENTS},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text


def direct_embeddings(stack: Stack, texts: list[str]) -> list[list[float]]:
    response = httpx.post(
        f"{stack.gateway_url}/v1/embeddings",
        json={"model": EMBEDDING_MODEL, "input": texts},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return [item["embedding"] for item in sorted(response.json()["data"], key=lambda item: item["index"])]


def test_chat_openai_invoke_answers_with_text_and_usage(stack: Stack) -> None:
    answer = chat(stack).invoke([SystemMessage("Answer briefly."), HumanMessage("Say hello.")])
    assert isinstance(answer.content, str)
    assert answer.content.strip()
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["output_tokens"] > 0
    assert answer.response_metadata["finish_reason"] in {"stop", "length"}


def test_chat_openai_stream_chunks_join_to_the_answer(stack: Stack) -> None:
    chunks = list(chat(stack).stream("Name a colour."))
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    text = "".join(str(chunk.content) for chunk in chunks)
    assert text.strip()
    assert len(chunks) > 1  # role, content and finish arrive as separate events
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.content == text
    assert merged.response_metadata.get("finish_reason") in {"stop", "length"}


def test_chat_openai_answers_from_a_collection_named_in_extra_body(stack: Stack, ingested: None) -> None:
    question = "How tall is the Tower of Hercules?"
    grounded = chat(stack, extra_body={"collection": COLLECTION, "top_k": 1}).invoke(question)
    plain = chat(stack).invoke(question)
    assert isinstance(grounded.content, str)
    assert grounded.content.strip()
    assert grounded.usage_metadata is not None
    assert plain.usage_metadata is not None
    # LangChain drops the answer's `citations`; the retrieved passage shows in the prompt tokens.
    assert grounded.usage_metadata["input_tokens"] > plain.usage_metadata["input_tokens"] + 20
    streamed = chat(stack, extra_body={"collection": COLLECTION, "top_k": 1}).stream(
        "Where does black tea come from?"
    )
    assert "".join(str(chunk.content) for chunk in streamed).strip()


def test_chat_openai_naming_an_unknown_collection_raises_not_found(stack: Stack) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        chat(stack, extra_body={"collection": "no-such-collection"}).invoke("Anything?")
    problem = raised.value.response.json()
    assert raised.value.response.headers["content-type"].startswith("application/problem+json")
    assert "no-such-collection" in problem["detail"]


async def test_chat_openai_async_invoke(stack: Stack) -> None:
    answer = await chat(stack).ainvoke("Say hi.")
    assert str(answer.content).strip()


def test_openai_embeddings_match_the_gateways_own_vectors(stack: Stack) -> None:
    texts = ["The oldest Roman lighthouse.", "Tea leaves are oxidised."]
    client = embeddings(stack)
    documents = client.embed_documents(texts)
    query = client.embed_query("Which lighthouse is oldest?")
    expected = direct_embeddings(stack, [*texts, "Which lighthouse is oldest?"])
    dims = len(expected[0])
    assert dims > 0
    assert [len(v) for v in [*documents, query]] == [dims, dims, dims]
    for got, want in zip([*documents, query], expected, strict=True):
        assert math.dist(got, want) < 1e-4
    assert math.dist(documents[0], documents[1]) > 0.1  # different texts, different vectors
