"""Only the gateway is public: every other service refuses calls without the stack's internal token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rag_devstack.topology import INTERNAL_TOKEN_ENV

from .conftest import API_KEY, Stack

pytestmark = pytest.mark.e2e

COLLECTION = "e2e-internal-token"
# A real endpoint of each internal service, with a body it accepts.
INTERNAL_CALLS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "embedding": ("POST", "/v1/embeddings", {"input": ["internal token"]}),
    "retrieval": ("GET", "/v1/collections", None),
    "llm": ("GET", "/v1/models", None),
    "safety": ("POST", "/v1/check", {"text": "Hello there.", "direction": "input"}),
    "orchestrator": ("GET", "/v1/collections", None),
}


def token_of(stack: Stack) -> str:
    tokens = {env[INTERNAL_TOKEN_ENV] for env in stack.envs.values()}
    assert len(tokens) == 1, "every service of the stack shares one token"
    [token] = tokens
    assert token
    return token


@pytest.mark.parametrize("service", sorted(INTERNAL_CALLS))
def test_an_internal_service_refuses_a_direct_call_without_the_token(stack: Stack, service: str) -> None:
    method, path, body = INTERNAL_CALLS[service]
    with httpx.Client(base_url=stack.services[service].url, timeout=60.0) as client:
        refused = client.request(method, path, json=body)
        wrong = client.request(method, path, json=body, headers={"X-Internal-Token": "guessed"})
        allowed = client.request(method, path, json=body, headers={"X-Internal-Token": token_of(stack)})
        probe = client.get("/readyz")

    for response in (refused, wrong):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/internal-token")
    assert allowed.status_code == 200, allowed.text
    assert probe.status_code == 200, "probes stay open"


def test_the_gateway_is_public_and_its_calls_carry_the_token_to_every_service(stack: Stack) -> None:
    document = {"id": "kiwi", "text": "The kiwi is a flightless bird native to New Zealand."}
    with httpx.Client(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120.0
    ) as client:
        # gateway -> orchestrator -> embedding, retrieval
        ingested = client.post("/v1/documents", json={"collection": COLLECTION, "documents": [document]})
        # gateway -> orchestrator -> safety, embedding, retrieval, llm
        answered = client.post(
            "/v1/rag/query", json={"collection": COLLECTION, "question": "Can the kiwi fly?", "max_tokens": 8}
        )

    assert ingested.status_code == 200, ingested.text
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert [c["document_id"] for c in body["citations"]] == ["kiwi"], "embedding and retrieval answered"
    assert body["safety"]["input"] == "allow", "safety answered"
    assert body["usage"]["completion_tokens"] > 0, "the llm answered"
