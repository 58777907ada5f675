"""An embedding backend switch with the real stack: vectors never mix, and a re-embedding job through the
gateway moves the collection to the new model."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from .conftest import API_KEY, Stack, running_stack

pytestmark = pytest.mark.e2e
COLLECTION = "switching"
TORCH_MODEL, ONNX_MODEL = "all-MiniLM-L6-v2", "all-MiniLM-L6-v2-onnx-int8"
DOCUMENTS = [
    {"id": "kettles", "text": "A whistling kettle signals boiling water with a loud whistle from its spout."},
    {"id": "bees", "text": "Bees communicate the direction of flowers to their hive with a waggle dance."},
    {"id": "pharos", "text": "The Pharos of Alexandria was an ancient lighthouse on the island of Pharos."},
]


def _torch_first(_: dict[str, int], envs: dict[str, dict[str, str]]) -> None:
    envs["embedding"]["EMBEDDING_BACKEND"] = "torch"
    # A switched backend is noticed within a second even by texts whose vectors are cached.
    envs["orchestrator"]["ORCHESTRATOR_EMBEDDING_MODEL_TTL_S"] = "1"
    envs["orchestrator"]["ORCHESTRATOR_SAFETY_TIMEOUT_S"] = "30"  # first calls on a busy machine are slow


@pytest.fixture(scope="module")
def switching_stack() -> Iterator[Stack]:
    with running_stack(_torch_first) as stack:
        yield stack


@pytest.fixture(scope="module")
def client(switching_stack: Stack) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=switching_stack.gateway_url, headers=headers, timeout=120.0) as http:
        yield http


def ask(client: httpx.Client, question: str) -> httpx.Response:
    body = {"collection": COLLECTION, "question": question, "max_tokens": 8, "top_k": 1}
    return client.post("/v1/rag/query", json=body)


def model_of(client: httpx.Client) -> str | None:
    listed = client.get("/v1/collections").json()["collections"]
    return next(c["embedding_model"] for c in listed if c["name"] == COLLECTION)


def named(model_id: str | None) -> str | None:
    """The model name of a vectors id `<name>@<version>` (the version changes with the weights)."""
    return model_id.split("@", 1)[0] if model_id else None


def wait_finished(client: httpx.Client, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(f"/v1/collections/{COLLECTION}/reembed/{job_id}")
        assert job.status_code == 200, job.text
        if job.json()["status"] in ("succeeded", "failed"):
            return dict(job.json())
        time.sleep(0.2)
    raise AssertionError(f"re-embedding job {job_id} did not finish")


def test_a_backend_switch_is_refused_until_the_collection_is_reembedded(
    switching_stack: Stack, client: httpx.Client
) -> None:
    ingested = client.post("/v1/documents", json={"collection": COLLECTION, "documents": DOCUMENTS})
    assert ingested.status_code == 200, ingested.text
    assert named(model_of(client)) == TORCH_MODEL
    before = ask(client, "How do bees tell the hive where flowers are?")
    assert before.status_code == 200, before.text
    assert [c["document_id"] for c in before.json()["citations"]] == ["bees"]

    switching_stack.services["embedding"].stop()
    switching_stack.envs["embedding"]["EMBEDDING_BACKEND"] = "onnx"
    switching_stack.restart("embedding")

    refused = ask(client, "Which ancient lighthouse stood in Alexandria?")
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    detail = refused.json()["detail"]
    assert f"holds vectors of model '{TORCH_MODEL}@" in detail
    assert f"this request's vectors are from model '{ONNX_MODEL}@" in detail
    assert "t-" not in detail, "the problem names the caller's collection, not its physical name"
    more = {"collection": COLLECTION, "documents": [{"id": "late", "text": "Owls hunt at night."}]}
    assert client.post("/v1/documents", json=more).status_code == 409

    submitted = client.post(f"/v1/collections/{COLLECTION}/reembed")
    assert submitted.status_code == 202, submitted.text
    job = wait_finished(client, submitted.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert (named(job["source_model"]), named(job["target_model"])) == (TORCH_MODEL, ONNX_MODEL)
    assert job["points_done"] == job["points_total"] == len(DOCUMENTS)

    assert named(model_of(client)) == ONNX_MODEL
    after = ask(client, "Which ancient lighthouse stood in Alexandria?")
    assert after.status_code == 200, after.text
    assert [c["document_id"] for c in after.json()["citations"]] == ["pharos"]
    assert client.post("/v1/documents", json=more).status_code == 200
