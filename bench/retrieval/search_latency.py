"""Upsert rate and search latency of the embedded engines (Qdrant Edge, qdrant-client local mode).

Random unit vectors (384 dimensions, like all-MiniLM-L6-v2) with short texts for BM25, upserted in
batches of 1,000 through the retrieval adapters; dense and hybrid queries, with and without a payload
filter. After one untimed warm-up query, each query kind runs 50 times or for 60 s, whichever ends first (the count is reported).
Usage: .venv/bin/python bench/retrieval/search_latency.py [--engines edge,local] [sizes...]
(default: both engines, 10000 100000). Writes bench/retrieval/LATENCY.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from rag_common.contracts import CollectionCreate, Point, SearchRequest
from rag_devstack.bench import record_goals
from rag_retrieval.adapters.qdrant import QdrantVectorStore
from rag_retrieval.adapters.qdrant_edge import QdrantEdgeVectorStore
from rag_retrieval.ports import VectorStore

DIMENSIONS = 384
QUERIES = 50
QUERY_BUDGET_S = 60.0
WORDS = "library catalog index retrieval search ranking query document science information system".split()


def unit_vector(rng: random.Random) -> list[float]:
    vector = [rng.gauss(0, 1) for _ in range(DIMENSIONS)]
    norm = sum(x * x for x in vector) ** 0.5
    return [x / norm for x in vector]


def text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(40))


def connect(engine: str, folder: str) -> VectorStore:
    if engine == "edge":
        return QdrantEdgeVectorStore.connect(path=folder)
    return QdrantVectorStore.connect(url=None, path=folder)


async def fill(store: VectorStore, size: int, rng: random.Random) -> float:
    """Upsert `size` points; the rate counts the adapter and engine, not making the vectors."""
    await store.create_collection(CollectionCreate(name="bench", vector_size=DIMENSIONS))
    elapsed = 0.0
    for start in range(0, size, 1000):
        points = [
            Point(
                id=str(uuid.uuid4()),
                vector=unit_vector(rng),
                payload={"text": text(rng), "document_id": f"d{i % 1000}", "metadata": {"shard": i % 10}},
            )
            for i in range(start, min(size, start + 1000))
        ]
        started = time.perf_counter()
        await store.upsert("bench", points)
        elapsed += time.perf_counter() - started
    return size / elapsed


async def latencies(store: VectorStore, rng: random.Random, **query: object) -> tuple[float, float, int]:
    """One untimed warm-up query first: Qdrant Edge indexes a filtered field on first use."""
    await store.search("bench", SearchRequest(vector=unit_vector(rng), text=text(rng)[:60], **query))  # type: ignore[arg-type]
    samples: list[float] = []
    deadline = time.perf_counter() + QUERY_BUDGET_S
    while len(samples) < QUERIES and time.perf_counter() < deadline:
        request = SearchRequest(vector=unit_vector(rng), text=text(rng)[:60], top_k=5, **query)  # type: ignore[arg-type]
        started = time.perf_counter()
        await store.search("bench", request)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.99) - 1)], len(samples)


async def measure(engine: str, size: int) -> str:
    rng = random.Random(size)
    with tempfile.TemporaryDirectory() as folder:
        store = connect(engine, folder)
        upserts_per_s = await fill(store, size, rng)
        cells = [engine, f"{size:,}", f"{upserts_per_s:,.0f}"]
        for query in (
            {"mode": "dense"},
            {"mode": "hybrid"},
            {"mode": "hybrid", "filter": {"metadata.shard": 3}},
        ):
            p50, p99, n = await latencies(store, rng, **query)
            cells.append(f"{p50:.1f} / {p99:.1f}" + ("" if n == QUERIES else f" (n={n})"))
        await store.close()
    row = "| " + " | ".join(cells) + " |"
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engines", default="edge,local")
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000])
    args = parser.parse_args()
    lines = [
        "| engine | chunks | upsert points/s | dense p50 / p99 ms | hybrid p50 / p99 ms | hybrid + filter p50 / p99 ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for size in args.sizes:
        for engine in args.engines.split(","):
            lines.append(asyncio.run(measure(engine, size)))
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    both = args.engines == parser.get_default("engines")
    results = "LATENCY.md" if both else f"LATENCY-{args.engines.replace(',', '-')}.md"
    (Path(__file__).parent / results).write_text(
        "# Search latency of the embedded engines\n\n"
        f"`bench/retrieval/search_latency.py` on {machine}: 384-dimension random unit vectors, "
        f"40-word texts (BM25), top 5, hybrid with 100 candidates each and DBSF, filter on "
        f"`metadata.shard` (1 in 10 points). One warm-up query per kind, then up to {QUERIES} queries per kind within {QUERY_BUDGET_S:.0f} s "
        "(n = how many ran when fewer).\n\n" + "\n".join(lines) + "\n"
    )
    record_goals(__file__, [])  # figures only: the issue sets no latency goal


if __name__ == "__main__":
    main()
