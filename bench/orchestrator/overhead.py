"""Orchestration overhead of a full, uncached RAG query: the share of its time spent outside the
embedding, retrieval, safety and generation calls themselves.

Real processes (the whole stack on loopback). Each query asks a question never asked before, straight
at the orchestrator, and reads the orchestrator's own `Server-Timing`: `total` and the duration of
every stage. Concurrent stages (input safety with the embedding; the output check with grounding)
count once, as the longer of the two. Overhead = total - the downstream calls; the answer-cache
lookups are counted as overhead (they are the orchestrator's own Redis work).
Usage: .venv/bin/python bench/orchestrator/overhead.py [--queries 30]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import httpx

from rag_devstack.bench import BENCH_STACK_ENV, Goal, record_goals
from rag_devstack.stack import local_stack

KEY = "bench-key"
GOAL = 0.05
RESULTS = Path(__file__).with_name("RESULTS.md")
DOCUMENTS = [
    {"id": "etna", "text": "Mount Etna is an active stratovolcano on the east coast of Sicily, Italy."},
    {
        "id": "bread",
        "text": "Sourdough bread is leavened by a starter of wild yeast and lactic acid bacteria.",
    },
    {
        "id": "rust",
        "text": "Rust is a programming language that enforces memory safety without a garbage collector.",
    },
]
# Stages that call a downstream service; pairs run concurrently.
CALLS = ("retrieve", "rerank", "screen", "generate")
CONCURRENT = (("safety_in", "embed"), ("safety_out", "ground"))


def stages(header: str) -> dict[str, float]:
    timings = {}
    for metric in header.split(","):
        name, _, params = metric.strip().partition(";")
        if "dur=" in params:
            timings[name] = float(params.split("dur=")[1].split(";")[0])
    return timings


def in_calls(timings: dict[str, float]) -> float:
    return sum(timings.get(name, 0.0) for name in CALLS) + sum(
        max(timings.get(a, 0.0), timings.get(b, 0.0)) for a, b in CONCURRENT
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    shares, totals, outside = [], [], []
    with local_stack(api_key=KEY, extra_env=BENCH_STACK_ENV) as stack:
        auth = {"Authorization": f"Bearer {KEY}"}
        httpx.post(
            f"{stack.gateway_url}/v1/documents",
            json={"collection": "bench", "documents": DOCUMENTS},
            headers=auth,
            timeout=120,
        ).raise_for_status()
        direct = {"X-Tenant-ID": "dev", "X-Internal-Token": stack.envs["orchestrator"]["RAG_INTERNAL_TOKEN"]}
        with httpx.Client(base_url=stack.url("orchestrator"), headers=direct, timeout=120) as client:
            for i in range(args.queries + 3):
                question = f"Where is Mount Etna, and what is it? (query {i})"
                response = client.post(
                    "/v1/rag/query", json={"collection": "bench", "question": question, "max_tokens": 16}
                )
                response.raise_for_status()
                if i < 3:  # warm-up
                    continue
                timings = stages(response.headers["server-timing"])
                total = timings["total"]
                totals.append(total)
                outside.append(total - in_calls(timings))
                shares.append((total - in_calls(timings)) / total)
    share = statistics.median(shares)
    verdict = "reached" if share <= GOAL else "NOT reached"
    report = "\n".join(
        [
            f"{args.queries} uncached RAG queries straight at the orchestrator (16 tokens, SmolLM2 on 1 thread).",
            "",
            "| figure | median |",
            "| --- | --- |",
            f"| total per query (Server-Timing `total`) | {statistics.median(totals):.1f} ms |",
            f"| outside the downstream calls | {statistics.median(outside):.2f} ms |",
            f"| share outside | {share:.1%} |",
            "",
            f"Orchestration overhead {share:.1%} of a query (goal <= {GOAL:.0%}: {verdict}).",
        ]
    )
    print(report)
    RESULTS.write_text("# Orchestration overhead\n\n" + report + "\n")
    goal = Goal(
        f"an uncached RAG query spends <= {GOAL:.0%} outside the downstream calls",
        f"{share:.1%} ({statistics.median(outside):.2f} of {statistics.median(totals):.1f} ms)",
        share <= GOAL,
        share,
    )
    record_goals(__file__, [goal])


if __name__ == "__main__":
    main()
