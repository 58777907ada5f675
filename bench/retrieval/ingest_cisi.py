"""Ingestion of all of CISI through the gateway, against the raw embedding throughput of the same chunks.

Raw: the embedding model in this process encodes the chunks the orchestrator would make (same chunker,
same settings) at its best batch size. Through the platform: the 1,460 documents go to the gateway as
ingestion jobs (`POST /v1/documents/jobs`), which the orchestrator chunks, embeds through the embedding
service and upserts into retrieval (embedded Qdrant); timed from the first submit until every job has
succeeded. Both figures are chunks per second on the same 2 cores, measured in one run.
Usage: .venv/bin/python bench/retrieval/ingest_cisi.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

from rag_devstack.bench import BENCH_STACK_ENV, Goal, record_goals
from rag_devstack.stack import local_stack
from rag_embedding.main import load_embedder
from rag_embedding.settings import Settings as EmbeddingSettings
from rag_orchestrator.chunking import chunk_text
from rag_orchestrator.settings import Settings as OrchestratorSettings

sys.path.insert(0, str(Path(__file__).parent))
import cisi

KEY = "bench-key"
GOAL = 0.70
JOB_DOCUMENTS = 500
BATCH_SIZES = (32, 64, 128)
RAW_SAMPLE = 1000
RESULTS = Path(__file__).with_name("INGEST.md")


def chunks_of(documents: dict[str, str]) -> list[str]:
    settings = OrchestratorSettings()
    return [
        chunk.text
        for text in documents.values()
        for chunk in chunk_text(text, size=settings.chunk_size, overlap=settings.chunk_overlap)
    ]


def raw_rate(texts: list[str]) -> tuple[int, float]:
    """Chunks/s of the model in this process at its best batch size (each size timed on the same
    RAW_SAMPLE chunks), one call at a time on every core."""
    embedder = load_embedder(EmbeddingSettings(model_workers=1))
    embedder.embed(texts[:64])
    texts = texts[:RAW_SAMPLE]
    rates = {}
    for size in BATCH_SIZES:
        embedder._batch_size = size  # type: ignore[attr-defined]
        started = time.perf_counter()
        embedder.embed(texts)
        rates[size] = len(texts) / (time.perf_counter() - started)
    best = max(rates, key=lambda s: rates[s])
    return best, rates[best]


def ingest(url: str, documents: dict[str, str]) -> tuple[float, int, int]:
    """Seconds from the first submit until every job succeeded, documents done, chunks written."""
    items = [{"id": f"cisi-{doc_id}", "text": text} for doc_id, text in documents.items()]
    with httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {KEY}"}) as client:
        started = time.perf_counter()
        jobs = []
        for start in range(0, len(items), JOB_DOCUMENTS):
            batch = {"collection": "cisi", "documents": items[start : start + JOB_DOCUMENTS]}
            submitted = client.post("/v1/documents/jobs", json=batch)
            submitted.raise_for_status()
            jobs.append(submitted.json()["job_id"])
        finished: dict[str, dict[str, object]] = {}
        while len(finished) < len(jobs):
            for job_id in jobs:
                status = client.get(f"/v1/documents/jobs/{job_id}").json()
                if status["status"] == "failed":
                    raise RuntimeError(f"job {job_id} failed: {status['error']}")
                if status["status"] == "succeeded":
                    finished[job_id] = status
            time.sleep(0.2)
        seconds = time.perf_counter() - started
    done = sum(int(s["documents_done"]) for s in finished.values())  # type: ignore[call-overload]
    chunks = sum(int(s["chunks"]) for s in finished.values())  # type: ignore[call-overload]
    return seconds, done, chunks


def main() -> None:
    documents = cisi.load().documents
    texts = chunks_of(documents)
    best_batch, raw = raw_rate(texts)
    with local_stack(api_key=KEY, extra_env=BENCH_STACK_ENV) as stack:
        seconds, done, chunks = ingest(stack.gateway_url, documents)
    served = chunks / seconds
    ratio = served / raw
    verdict = "reached" if ratio >= GOAL else "NOT reached"
    report = "\n".join(
        [
            f"CISI: {len(documents)} documents, {len(texts)} chunks (the orchestrator's chunker and defaults).",
            "",
            "| path | chunks/s | documents/s |",
            "| --- | --- | --- |",
            f"| embedding model in-process, best batch ({best_batch}) | {raw:.0f} | - |",
            f"| ingestion jobs through the gateway ({done} documents in {seconds:.1f} s) | {served:.0f} | "
            f"{done / seconds:.1f} |",
            "",
            f"Ratio ingestion / raw embedding: {ratio:.2f} (goal {GOAL:.2f}: {verdict}).",
        ]
    )
    print(report)
    RESULTS.write_text("# Ingestion of CISI through the gateway\n\n" + report + "\n")
    goal = Goal(
        f"ingestion through the gateway >= {GOAL:.0%} of raw embedding throughput",
        f"{served:.0f} vs {raw:.0f} chunks/s ({done / seconds:.1f} documents/s)",
        ratio >= GOAL,
        ratio,
    )
    record_goals(__file__, [goal])


if __name__ == "__main__":
    main()
