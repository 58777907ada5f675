"""Tenants end to end: the gateway's X-Tenant-ID and the orchestrator's per-tenant collections."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from rag_common.errors import BadRequest, UnprocessableContent
from rag_orchestrator import tenancy

from .conftest import Stack

ADMIN = {"Authorization": "Bearer rag-admin-key"}
SECRET_TEXT = "The launch code of tenant A is fig-walnut-42, kept in the blue vault under the lighthouse."


def test_tenant_collections_map_one_to_one_within_the_retrieval_name_rules() -> None:
    assert tenancy.physical("acme", "docs") == "t-acme--docs"
    assert tenancy.logical("acme", "t-acme--docs") == "docs"
    assert tenancy.physical("a", "b-c") != tenancy.physical("a_b", "c")
    assert tenancy.tenant_from(None) == tenancy.DEFAULT_TENANT
    longest = "x" * (64 - len("t-acme--"))
    assert len(tenancy.physical("acme", longest)) == 64
    with pytest.raises(UnprocessableContent):
        tenancy.physical("acme", longest + "x")
    for bad in ("a-b", "-a", "a b", "x" * 33, "t--x"):
        with pytest.raises(BadRequest):
            tenancy.tenant_from(bad)


def _issue(client: httpx.Client, tenant: str) -> dict[str, str]:
    spec = {"tenant": tenant, "name": f"{tenant}-e2e", "scopes": ["query", "ingest"]}
    response = client.post("/v1/admin/keys", json=spec, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}


@pytest.fixture(scope="module")
def tenant_keys(stack: Stack) -> Iterator[tuple[httpx.Client, dict[str, str], dict[str, str]]]:
    with httpx.Client(base_url=stack.gateway_url, timeout=120.0) as client:
        yield client, _issue(client, "tenanta"), _issue(client, "tenantb")


@pytest.mark.e2e
def test_a_tenant_never_sees_another_tenants_collection(
    tenant_keys: tuple[httpx.Client, dict[str, str], dict[str, str]],
) -> None:
    client, key_a, key_b = tenant_keys
    ingest = {"collection": "vault", "documents": [{"id": "secret", "text": SECRET_TEXT}]}
    ingested = client.post("/v1/documents", json=ingest, headers=key_a)
    assert ingested.status_code == 200, ingested.text
    assert ingested.json()["collection"] == "vault", "the caller sees its own collection name"

    question = {"collection": "vault", "question": "What is the launch code?", "max_tokens": 8}
    own = client.post("/v1/rag/query", json=question, headers=key_a)
    assert own.status_code == 200, own.text
    assert own.json()["citations"][0]["document_id"] == "secret"

    foreign = client.post("/v1/rag/query", json=question, headers=key_b)
    assert foreign.status_code == 404, foreign.text
    assert foreign.json()["detail"] == "Collection 'vault' does not exist."
    assert "tenanta" not in foreign.text
    assert SECRET_TEXT not in foreign.text

    spoofed = client.post("/v1/rag/query", json=question, headers=key_b | {"X-Tenant-ID": "tenanta"})
    assert spoofed.status_code == 404
    chat = {
        "messages": [{"role": "user", "content": "What is the launch code?"}],
        "collection": "vault",
        "max_tokens": 8,
    }
    assert client.post("/v1/chat/completions", json=chat, headers=key_b).status_code == 404


@pytest.mark.e2e
def test_the_same_collection_name_is_separate_per_tenant(
    tenant_keys: tuple[httpx.Client, dict[str, str], dict[str, str]],
) -> None:
    client, key_a, key_b = tenant_keys
    mine = {"collection": "shared-name", "documents": [{"id": "b-doc", "text": "Tenant B keeps bees."}]}
    assert client.post("/v1/documents", json=mine, headers=key_b).status_code == 200
    theirs = {"collection": "shared-name", "documents": [{"id": "a-doc", "text": SECRET_TEXT}]}
    assert client.post("/v1/documents", json=theirs, headers=key_a).status_code == 200
    question = {"collection": "shared-name", "question": "Who keeps bees?", "top_k": 10, "max_tokens": 8}
    answer = client.post("/v1/rag/query", json=question, headers=key_b)
    assert answer.status_code == 200, answer.text
    assert {c["document_id"] for c in answer.json()["citations"]} == {"b-doc"}
    assert SECRET_TEXT not in answer.text


@pytest.mark.e2e
def test_direct_orchestrator_calls_belong_to_tenant_default(
    stack: Stack, tenant_keys: tuple[httpx.Client, dict[str, str], dict[str, str]]
) -> None:
    client, key_a, _ = tenant_keys
    orchestrator = stack.services["orchestrator"].url
    docs = {"collection": "internal", "documents": [{"id": "memo", "text": "Internal memo about otters."}]}
    internal = {"X-Internal-Token": stack.envs["orchestrator"]["RAG_INTERNAL_TOKEN"]}
    direct = httpx.post(f"{orchestrator}/v1/documents", json=docs, headers=internal, timeout=60)
    assert direct.status_code == 200, direct.text
    assert direct.json()["collection"] == "internal"
    question = {"collection": "internal", "question": "What is the memo about?", "max_tokens": 8}
    as_default = httpx.post(f"{orchestrator}/v1/rag/query", json=question, headers=internal, timeout=120)
    assert as_default.status_code == 200, as_default.text
    assert as_default.json()["citations"][0]["document_id"] == "memo"
    assert client.post("/v1/rag/query", json=question, headers=key_a).status_code == 404
    bad = httpx.post(
        f"{orchestrator}/v1/rag/query",
        json=question,
        headers=internal | {"X-Tenant-ID": "../etc"},
        timeout=30,
    )
    assert bad.status_code == 400
