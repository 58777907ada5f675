"""Retrieval quality on CISI: BM25 alone, dense alone and hybrid (RRF), through the retrieval adapter.

Runs in-process on the platform's own code (the sentence-transformers embedder and the Qdrant store
with its BM25 sparse vectors), one point per CISI document. Usage:
    .venv/bin/python bench/retrieval/cisi_eval.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

from qdrant_client import AsyncQdrantClient
from ranx import Qrels, Run, evaluate

from rag_common.contracts import CollectionCreate, Point, SearchRequest
from rag_devstack.bench import Goal, record_goals
from rag_embedding.adapters.sentence_transformers import SentenceTransformerEmbedder
from rag_retrieval.adapters.qdrant import QdrantVectorStore

sys.path.insert(0, str(Path(__file__).parent))
import cisi

METRICS = ["ndcg@10", "recall@100", "mrr"]
# (label, search mode, hybrid fusion)
CONFIGS = (
    ("BM25 (sparse)", "sparse", "dbsf"),
    ("dense (all-MiniLM-L6-v2)", "dense", "dbsf"),
    ("hybrid, reciprocal rank fusion", "hybrid", "rrf"),
    ("hybrid, distribution-based score fusion (default)", "hybrid", "dbsf"),
)
DEPTH = 100


async def index(
    store: QdrantVectorStore, embedder: SentenceTransformerEmbedder, docs: dict[str, str]
) -> float:
    await store.create_collection(CollectionCreate(name="cisi", vector_size=embedder.dimension))
    ids = list(docs)
    started = time.perf_counter()
    vectors = embedder.embed([docs[i] for i in ids])
    points = [
        Point(id=str(uuid.uuid5(uuid.NAMESPACE_URL, i)), vector=v, payload={"doc": i, "text": docs[i]})
        for i, v in zip(ids, vectors, strict=True)
    ]
    for start in range(0, len(points), 256):
        await store.upsert("cisi", points[start : start + 256])
    return time.perf_counter() - started


async def run(
    client: AsyncQdrantClient, embedder: SentenceTransformerEmbedder, queries: dict[str, str]
) -> dict[str, dict[str, dict[str, float]]]:
    vectors = dict(zip(queries, embedder.embed(list(queries.values())), strict=True))
    runs: dict[str, dict[str, dict[str, float]]] = {label: {} for label, _, _ in CONFIGS}
    for label, mode, fusion in CONFIGS:
        store = QdrantVectorStore(client, fusion=fusion)
        for qid, text in queries.items():
            request = SearchRequest(vector=vectors[qid], text=text, mode=mode, top_k=DEPTH)
            hits = await store.search("cisi", request)
            # Fused scores tie often; ranks are what count, so score by rank.
            runs[label][qid] = {str(h.payload["doc"]): float(DEPTH - rank) for rank, h in enumerate(hits)}
    return runs


async def main() -> None:
    collection = cisi.load()
    embedder = SentenceTransformerEmbedder(
        model_name="all-MiniLM-L6-v2", model_path=None, device="cpu", batch_size=32, normalize=True
    )
    with tempfile.TemporaryDirectory() as folder:
        client = AsyncQdrantClient(path=folder)
        seconds = await index(QdrantVectorStore(client), embedder, collection.documents)
        runs = await run(client, embedder, collection.queries)
        await client.close()
    qrels = Qrels(collection.qrels)
    rows = {label: evaluate(qrels, Run(runs[label]), METRICS) for label, _, _ in CONFIGS}
    sparse_row, dense_row, _, hybrid_row = (rows[label] for label, _, _ in CONFIGS)
    lines = [
        f"CISI: {len(collection.documents)} documents, {len(collection.queries)} judged queries, "
        f"indexed in {seconds:.1f} s.",
        "",
        "| retrieval | nDCG@10 | recall@100 | MRR |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {m} | {r['ndcg@10']:.4f} | {r['recall@100']:.4f} | {r['mrr']:.4f} |" for m, r in rows.items()
    ]
    best_single = max(sparse_row["ndcg@10"], dense_row["ndcg@10"])
    gain = (hybrid_row["ndcg@10"] - best_single) * 100
    verdict = "reached" if gain >= 2 else "NOT reached"
    lines += [
        "",
        f"Default hybrid minus the better single method: {gain:+.2f} nDCG@10 points (goal +2.00: {verdict}).",
    ]
    report = "\n".join(lines)
    print(report)
    (Path(__file__).parent / "RESULTS.md").write_text("# CISI retrieval quality\n\n" + report + "\n")
    goal = Goal(
        "hybrid nDCG@10 >= better single method + 2 points",
        f"{gain:+.2f} points ({hybrid_row['ndcg@10']:.4f} vs {best_single:.4f})",
        gain >= 2,
        hybrid_row["ndcg@10"] / best_single,
    )
    record_goals(__file__, [goal])


if __name__ == "__main__":
    asyncio.run(main())
