"""Uploads a folder through the gateway as ingestion jobs and follows them to the end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from tqdm import tqdm

SUPPORTED = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}


@dataclass(frozen=True)
class Outcome:
    documents: int
    chunks: int
    failed: list[str]


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED)


def batches(files: list[Path], max_files: int, max_bytes: int) -> Iterator[list[Path]]:
    batch: list[Path] = []
    size = 0
    for path in files:
        length = path.stat().st_size
        if batch and (len(batch) >= max_files or size + length > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += length
    if batch:
        yield batch


def _problem(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail") or response.text)
    except ValueError:
        return response.text


def _submit(client: httpx.Client, batch: list[Path], root: Path, collection: str) -> str:
    files = [("files", (str(p.relative_to(root)), p.read_bytes())) for p in batch]
    response = client.post("/v1/documents/upload", data={"collection": collection}, files=files)
    if response.status_code != 202:
        raise RuntimeError(
            f"upload of {len(batch)} files refused ({response.status_code}): {_problem(response)}"
        )
    return str(response.json()["job_id"])


def _follow(client: httpx.Client, job_id: str, bar: tqdm, poll_s: float) -> dict[str, object]:
    seen = 0
    while True:
        response = client.get(f"/v1/documents/jobs/{job_id}")
        response.raise_for_status()
        status = response.json()
        bar.update(int(status["documents_done"]) - seen)
        seen = int(status["documents_done"])
        if status["status"] in ("succeeded", "failed"):
            return dict(status)
        time.sleep(poll_s)


def ingest_folder(
    client: httpx.Client, folder: Path, collection: str, *, max_files: int = 50, max_bytes: int = 8_000_000
) -> Outcome:
    files = files_in(folder)
    documents = chunks = 0
    failed: list[str] = []
    with tqdm(total=len(files), unit="doc", desc=f"ingesting into {collection}") as bar:
        for batch in batches(files, max_files, max_bytes):
            try:
                status = _follow(client, _submit(client, batch, folder, collection), bar, 0.5)
            except RuntimeError as exc:
                failed.append(str(exc))
                bar.update(len(batch))
                continue
            documents += int(status["documents_done"])
            chunks += int(status["chunks"])
            if status["status"] == "failed":
                failed.append(str(status.get("error")))
    return Outcome(documents=documents, chunks=chunks, failed=failed)
