"""Hostile bodies at the public entry and at internal services: always a clear 4xx problem, never a 5xx."""

from __future__ import annotations

import httpx
import pytest

from .conftest import API_KEY, Stack

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
DEEP_JSON = ("[" * 100_000 + "]" * 100_000).encode()
DEEP_OBJECT = ('{"question":' * 5_000 + '"x"' + "}" * 5_000).encode()
INVALID_UTF8 = b'{"collection": "c", "question": "caf\xc3\x28 \xff\xfe"}'
BAD_BODIES = {
    "deeply nested array": DEEP_JSON,
    "deeply nested object": DEEP_OBJECT,
    "invalid UTF-8": INVALID_UTF8,
    "not JSON": b"question=where",
    "truncated JSON": b'{"question": "wh',
    "JSON null": b"null",
}


def assert_client_problem(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, response.text[:300]
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Traceback" not in response.text


@pytest.mark.parametrize("body", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
@pytest.mark.parametrize("path", ["/v1/rag/query", "/v1/chat/completions", "/v1/documents", "/v1/embeddings"])
def test_the_gateway_answers_malformed_bodies_with_a_4xx_problem(
    stack: Stack, path: str, body: bytes
) -> None:
    response = httpx.post(f"{stack.gateway_url}{path}", content=body, headers=AUTH, timeout=30)
    assert_client_problem(response)


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("orchestrator", "/v1/rag/query"),
        ("embedding", "/v1/embeddings"),
        ("retrieval", "/v1/collections/c/search"),
        ("llm", "/v1/chat/completions"),
        ("safety", "/v1/check"),
    ],
)
@pytest.mark.parametrize("body", [DEEP_JSON, DEEP_OBJECT, INVALID_UTF8], ids=["array", "object", "utf8"])
def test_internal_services_answer_malformed_bodies_with_a_4xx_problem(
    stack: Stack, service: str, path: str, body: bytes
) -> None:
    headers = {
        "Content-Type": "application/json",
        "X-Internal-Token": stack.envs[service]["RAG_INTERNAL_TOKEN"],
    }
    response = httpx.post(f"{stack.url(service)}{path}", content=body, headers=headers, timeout=30)
    assert_client_problem(response)


@pytest.mark.parametrize(
    "body",
    [
        {"collection": "c", "question": "q", "top_k": 10**9},
        {"collection": "c", "question": "q", "max_tokens": 10**9},
        {"collection": "c", "question": "q", "top_k": -1},
        {"collection": "c" * 10_000, "question": "q"},
        {"collection": "../../etc/passwd", "question": "q"},
        {"collection": "c", "question": "q", "filter": {"a" * 5000: "b"}},
    ],
    ids=[
        "huge top_k",
        "huge max_tokens",
        "negative top_k",
        "huge collection name",
        "path in name",
        "huge filter key",
    ],
)
def test_out_of_range_values_are_refused_with_a_4xx_problem(stack: Stack, body: dict[str, object]) -> None:
    response = httpx.post(f"{stack.gateway_url}/v1/rag/query", json=body, headers=AUTH, timeout=30)
    assert_client_problem(response)
