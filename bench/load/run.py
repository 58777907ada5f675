"""Load through the gateway with locust: the answer-cache path and the full RAG path with the small model.

The same load as `tests/e2e/test_load.py`, run longer: a warm-up, then a measured run per path, with
every service's resident memory sampled twice a second through both; the growth is how far the
measured run's settled memory (the median of its last third) lies above the warm-up's peak
(`loadtest.rss_growth_mb`), since single readings of the safety service swing by tens of MB each way.
Usage: .venv/bin/python bench/load/run.py [--seconds 60]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx

from rag_devstack.bench import BENCH_STACK_ENV, Goal, record_goals
from rag_devstack.loadtest import LoadResult, collect_sampling_rss, rss_growth_mb, start_locust
from rag_devstack.stack import LocalStack, local_stack

KEY = "bench-key"
COLLECTION = "load"
USERS = {"cache": 32, "full": 4}
# The full path warms longer: the safety service's first requests load and build its pipelines
# (about +280 MB within the first 15 s of a soak run, then a plateau).
WARM_UP_S = {"cache": 10, "full": 25}
MAX_GROWTH_MB = 40.0
RESULTS = Path(__file__).with_name("RESULTS.md")


def prepare(stack: LocalStack) -> None:
    documents = [
        {"id": "etna", "text": "Mount Etna is an active stratovolcano on the east coast of Sicily, Italy."},
        {
            "id": "bread",
            "text": "Sourdough bread is leavened by a starter of wild yeast and lactic bacteria.",
        },
    ]
    with httpx.Client(
        base_url=stack.gateway_url, timeout=120, headers={"Authorization": f"Bearer {KEY}"}
    ) as client:
        client.post(
            "/v1/documents", json={"collection": COLLECTION, "documents": documents}
        ).raise_for_status()
        question = {"collection": COLLECTION, "question": "Where is Mount Etna?", "max_tokens": 8}
        client.post("/v1/rag/query", json=question).raise_for_status()


def run_path(stack: LocalStack, path: str, seconds: int) -> tuple[LoadResult, dict[str, float]]:
    env = {"RAG_API_KEY": KEY, "RAG_COLLECTION": COLLECTION, "RAG_MAX_TOKENS": "8"}
    folder = stack.run_dir / "load"
    folder.mkdir(exist_ok=True)
    pids = {name: service.process.pid for name, service in stack.services.items()}
    warm = start_locust(
        stack.gateway_url, tag=path, users=USERS[path], seconds=WARM_UP_S[path], env=env, folder=folder
    )
    _, before = collect_sampling_rss(*warm, timeout_s=WARM_UP_S[path] + 120, pids=pids)
    measured = start_locust(
        stack.gateway_url, tag=path, users=USERS[path], seconds=seconds, env=env, folder=folder
    )
    result, after = collect_sampling_rss(*measured, timeout_s=seconds + 120, pids=pids)
    growth = {name: rss_growth_mb(before[name], after[name]) for name in pids}
    return result, growth


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=60, help="measured seconds per path")
    args = parser.parse_args()
    with local_stack(api_key=KEY, extra_env=BENCH_STACK_ENV) as stack:
        prepare(stack)
        outcomes = {path: run_path(stack, path, args.seconds) for path in USERS}
    lines = [
        f"locust (FastHttpUser, no think time) through the gateway, {args.seconds} s per path after a "
        f"warm-up ({', '.join(f'{path} {s} s' for path, s in WARM_UP_S.items())}); locust, the six "
        "services and Redis share the 2 cores. Memory growth: the measured run's settled RSS (median of "
        "its last third of samples) above the warm-up's peak.",
        "",
        "| path | users | requests | req/s | p50 ms | p90 ms | p99 ms | failures | largest RSS growth |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    goals = []
    for path, (result, growth) in outcomes.items():
        grew = max(growth, key=lambda name: growth[name])
        p = result.percentiles_ms
        lines.append(
            f"| {path} | {USERS[path]} | {result.requests} | {result.requests_per_s:.0f} | {p['50%']:.0f} | "
            f"{p['90%']:.0f} | {p['99%']:.0f} | {result.failures} | {grew} {growth[grew]:+.1f} MB |"
        )
        goals += [
            Goal(
                f"{path} path: no errors but 429s",
                f"{result.failures} of {result.requests}",
                result.failures == 0,
            ),
            Goal(
                f"{path} path: no service grows > {MAX_GROWTH_MB:.0f} MB after warm-up",
                f"{grew} {growth[grew]:+.1f} MB",
                growth[grew] <= MAX_GROWTH_MB,
            ),
        ]
    text = "\n".join(lines)
    print(text)
    RESULTS.write_text("# Load test\n\n" + text + "\n")
    record_goals(__file__, goals)


if __name__ == "__main__":
    main()
