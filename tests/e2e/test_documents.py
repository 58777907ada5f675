"""Uploads, ingestion jobs and document management through the gateway, with the real stack."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag_cli.ingest import ingest_folder

from .conftest import API_KEY, Stack

pytestmark = pytest.mark.e2e
COLLECTION = "library"


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=stack.gateway_url, headers=headers, timeout=120.0) as http:
        yield http


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("docs")
    (root / "guides").mkdir()
    (root / "guides" / "kettles.md").write_text(
        "# Kettles\n\nA whistling kettle signals boiling water with a loud whistle from its spout."
    )
    (root / "lighthouses.html").write_text(
        "<html><body><h1>Lighthouses</h1><p>The Pharos of Alexandria was an ancient lighthouse.</p>"
        "<script>ignored()</script></body></html>"
    )
    (root / "notes.txt").write_text("Bees communicate the direction of flowers with a waggle dance.")
    (root / "image.png").write_bytes(b"\x89PNG not a document")
    return root


@pytest.fixture(scope="module")
def ingested(client: httpx.Client, folder: Path) -> None:
    outcome = ingest_folder(client, folder, COLLECTION)
    assert outcome.failed == []
    assert outcome.documents == 3, "the .png is not a supported type, the CLI skips it"


def ask(client: httpx.Client, question: str) -> dict[str, object]:
    response = client.post(
        "/v1/rag/query", json={"collection": COLLECTION, "question": question, "max_tokens": 8}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_uploaded_files_are_listed_read_back_and_cited(client: httpx.Client, ingested: None) -> None:
    listed = client.get(f"/v1/collections/{COLLECTION}/documents").json()["documents"]
    assert sorted(d["document_id"] for d in listed) == ["guides/kettles.md", "lighthouses.html", "notes.txt"]
    page = client.get(f"/v1/collections/{COLLECTION}/documents/lighthouses.html").json()
    assert page["chunks"][0]["text"] == "Lighthouses\nThe Pharos of Alexandria was an ancient lighthouse."
    assert page["metadata"]["source"] == "lighthouses.html"
    answer = ask(client, "How do bees tell each other where flowers are?")
    assert answer["citations"][0]["document_id"] == "notes.txt"
    assert COLLECTION in [c["name"] for c in client.get("/v1/collections").json()["collections"]]


def test_a_deleted_document_is_never_cited_again(client: httpx.Client, ingested: None) -> None:
    question = "What signals that the water in a kettle is boiling?"
    assert ask(client, question)["citations"][0]["document_id"] == "guides/kettles.md"
    assert ask(client, question)["cached"] is True
    deleted = client.delete(f"/v1/collections/{COLLECTION}/documents/guides/kettles.md")
    assert deleted.json() == {
        "document_id": "guides/kettles.md",
        "collection": COLLECTION,
        "chunks_deleted": 1,
    }
    after = ask(client, question)
    assert after["cached"] is False
    assert "guides/kettles.md" not in {c["document_id"] for c in after["citations"]}
    missing = client.get(f"/v1/collections/{COLLECTION}/documents/guides/kettles.md")
    assert missing.status_code == 404


def test_an_unsupported_upload_is_415_naming_the_file(client: httpx.Client) -> None:
    response = client.post("/v1/documents/upload", files={"files": ("photo.png", b"\x89PNG")})
    assert response.status_code == 415
    assert "photo.png" in response.json()["detail"]


def test_a_corrupt_pdf_is_422_and_nothing_of_the_upload_is_ingested(client: httpx.Client) -> None:
    files = [("files", ("good.txt", b"Fine text.")), ("files", ("bad.pdf", b"%PDF-1.4 broken"))]
    response = client.post("/v1/documents/upload", data={"collection": "half"}, files=files)
    assert response.status_code == 422
    assert response.json()["file"] == "bad.pdf"
    assert client.get("/v1/collections/half/documents").status_code == 404


def test_a_json_job_reports_progress_to_the_end(client: httpx.Client) -> None:
    documents = [{"id": f"d{i}", "text": f"Short document number {i}."} for i in range(40)]
    submitted = client.post("/v1/documents/jobs", json={"collection": "jobs", "documents": documents})
    assert submitted.status_code == 202
    job_id = submitted.json()["job_id"]
    for _ in range(600):
        status = client.get(f"/v1/documents/jobs/{job_id}").json()
        if status["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert status["status"] == "succeeded"
    assert status["documents_done"] == status["documents_total"] == 40
    counts = client.get("/v1/collections/jobs/documents").json()["documents"]
    assert len(counts) == 40
    assert client.delete("/v1/collections/jobs").status_code == 204
    assert client.get("/v1/collections/jobs/documents").status_code == 404
