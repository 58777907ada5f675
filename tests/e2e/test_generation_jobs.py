"""Generation jobs end to end: queued through the gateway, surviving an orchestrator restart, per tenant."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from rag_common.contracts import GenerationJobStatus

from .conftest import Stack

pytestmark = pytest.mark.e2e
ADMIN = {"Authorization": "Bearer rag-admin-key"}
COLLECTION = "orchard"
DOCUMENT = "Apple trees are pruned in late winter, while they are dormant, to shape them and let light in."
QUESTIONS = [
    "When are apple trees pruned?",
    "Why are apple trees pruned?",
    "Are apple trees pruned while dormant?",
    "What season is best for pruning apple trees?",
]


def _issue(client: httpx.Client, tenant: str) -> dict[str, str]:
    spec = {"tenant": tenant, "name": f"{tenant}-jobs", "scopes": ["query", "ingest"]}
    response = client.post("/v1/admin/keys", json=spec, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}


@pytest.fixture(scope="module")
def keys(stack: Stack) -> Iterator[tuple[httpx.Client, dict[str, str], dict[str, str]]]:
    with httpx.Client(base_url=stack.gateway_url, timeout=120.0) as client:
        owner, stranger = _issue(client, "jobsowner"), _issue(client, "jobsstranger")
        ingest = {"collection": COLLECTION, "documents": [{"id": "pruning", "text": DOCUMENT}]}
        ingested = client.post("/v1/documents", json=ingest, headers=owner)
        assert ingested.status_code == 200, ingested.text
        yield client, owner, stranger


def _unfinished_in_redis(stack: Stack, job_ids: list[str]) -> int:
    with redis.Redis.from_url(stack.redis.url) as r:
        raws = [r.get(f"rag:genjob:{job_id}") for job_id in job_ids]
    return sum(1 for raw in raws if raw and not GenerationJobStatus.model_validate_json(raw).finished)


def _wait_succeeded(client: httpx.Client, job_id: str, headers: dict[str, str]) -> GenerationJobStatus:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        response = client.get(f"/v1/rag/jobs/{job_id}", headers=headers)
        assert response.status_code in (200, 503), response.text
        if response.status_code == 200:
            job = GenerationJobStatus.model_validate(response.json())
            assert job.status != "failed", job.error
            if job.status == "succeeded":
                return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_queued_jobs_survive_an_orchestrator_restart_and_answer_with_citations(
    stack: Stack, keys: tuple[httpx.Client, dict[str, str], dict[str, str]]
) -> None:
    client, owner, stranger = keys
    job_ids = []
    for question in QUESTIONS:
        body = {"collection": COLLECTION, "question": question, "max_tokens": 16}
        submitted = client.post("/v1/rag/jobs", json=body, headers=owner)
        assert submitted.status_code == 202, submitted.text
        job_ids.append(submitted.json()["job_id"])
        assert submitted.headers["location"] == f"/v1/rag/jobs/{job_ids[-1]}"
        assert submitted.json()["collection"] == COLLECTION
        assert "RateLimit" in submitted.headers, "a job counts against the caller's limits"

    stack.services["orchestrator"].stop()
    assert _unfinished_in_redis(stack, job_ids) >= 1, "the restart must interrupt some work"
    down = client.get(f"/v1/rag/jobs/{job_ids[0]}", headers=owner)
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"

    # Work taken by a process killed outright is taken over after this idle time.
    stack.envs["orchestrator"]["ORCHESTRATOR_GENERATION_JOB_CLAIM_IDLE_S"] = "2"
    stack.restart("orchestrator")
    for job_id in job_ids:
        done = _wait_succeeded(client, job_id, owner)
        assert (done.tenant, done.collection) == ("jobsowner", COLLECTION)
        result = client.get(f"/v1/rag/jobs/{job_id}/result", headers=owner)
        assert result.status_code == 200, result.text
        assert result.json()["answer"]
        assert [c["document_id"] for c in result.json()["citations"]] == ["pruning"]

    for path in (f"/v1/rag/jobs/{job_ids[0]}", f"/v1/rag/jobs/{job_ids[0]}/result"):
        foreign = client.get(path, headers=stranger)
        assert foreign.status_code == 404, foreign.text
        assert DOCUMENT not in foreign.text
    with redis.Redis.from_url(stack.redis.url) as r:
        assert r.xlen("rag:genjobs") == 0, "every finished job left the queue"


def test_a_job_with_a_webhook_to_a_host_not_allowed_is_refused(
    keys: tuple[httpx.Client, dict[str, str], dict[str, str]],
) -> None:
    client, owner, _ = keys
    body = {"collection": COLLECTION, "question": "When?", "webhook_url": "http://10.0.0.1/hook"}
    refused = client.post("/v1/rag/jobs", json=body, headers=owner)
    assert refused.status_code == 422, refused.text
    assert "ORCHESTRATOR_WEBHOOK_ALLOWED_HOSTS" in refused.json()["detail"]
