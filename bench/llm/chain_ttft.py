"""Time to first token through gateway -> orchestrator -> llm, against the llm service alone.

Real processes on loopback: Redis, the llm service, the orchestrator (safety checks off and a plain
chat, so retrieval and safety stay out of the figure, as the goal asks) and the gateway. Runs
alternate between the two paths; each asks a fresh question (no cache) with a short answer.
Usage: .venv/bin/python bench/llm/chain_ttft.py [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from rag_devstack.bench import Goal, record_goals
from rag_devstack.processes import ServiceProcess, free_port, start_service, wait_ready
from rag_devstack.redis_server import start_redis

GOAL_MS = 10.0
KEY = "bench-key"
RESULTS = Path(__file__).with_name("CHAIN.md")


def first_token_ms(client: httpx.Client, url: str, body: dict[str, object], headers: dict[str, str]) -> float:
    started = time.perf_counter()
    with client.stream("POST", url, json=body, headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: ") and '"content":"' in line and '"content":""' not in line:
                return (time.perf_counter() - started) * 1000
    raise RuntimeError(f"no token from {url}")


def start_chain(folder: Path) -> tuple[list[ServiceProcess], object]:
    redis = start_redis(free_port(), folder / "redis", folder / "redis.log")
    common = {"LLM_N_THREADS": "1", "OTEL_SDK_DISABLED": "true"}
    llm = start_service(
        "llm",
        "rag_llm.main:create_app",
        host="127.0.0.1",
        port=free_port(),
        env=common,
        log_path=folder / "llm.log",
    )
    wait_ready(llm, 120)
    orchestrator = start_service(
        "orchestrator",
        "rag_orchestrator.main:create_app",
        host="127.0.0.1",
        port=free_port(),
        env=common
        | {
            "ORCHESTRATOR_LLM_URL": llm.url,
            "ORCHESTRATOR_SAFETY_ENABLED": "false",
            "ORCHESTRATOR_REDIS_URL": redis.url,
        },
        log_path=folder / "orchestrator.log",
    )
    wait_ready(orchestrator, 60)
    gateway = start_service(
        "gateway",
        "rag_gateway.main:create_app",
        host="127.0.0.1",
        port=free_port(),
        env=common
        | {
            "GATEWAY_ORCHESTRATOR_URL": orchestrator.url,
            "GATEWAY_REDIS_URL": redis.url,
            "GATEWAY_DEV_API_KEY": KEY,
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "100000",
        },
        log_path=folder / "gateway.log",
    )
    wait_ready(gateway, 60)
    return [gateway, orchestrator, llm], redis


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        services, redis = start_chain(Path(tmp))
        gateway, _, llm = services
        direct, chain = [], []
        try:
            auth = {"Authorization": f"Bearer {KEY}"}
            with httpx.Client(timeout=60) as client:
                for i in range(args.runs + 2):
                    # A different question per request and alternating order: llama.cpp reuses the
                    # KV cache of a repeated prompt prefix, which would flatter whichever path asks second.
                    def body(path: str, i: int = i) -> dict[str, object]:
                        question = f"Name a colour. ({i}{path})"
                        return {
                            "messages": [{"role": "user", "content": question}],
                            "max_tokens": 4,
                            "stream": True,
                            "temperature": 0,
                        }

                    def ask_direct(i: int = i) -> float:
                        return first_token_ms(client, f"{llm.url}/v1/chat/completions", body("d", i), {})

                    def ask_chain(i: int = i) -> float:
                        return first_token_ms(
                            client, f"{gateway.url}/v1/chat/completions", body("c", i), auth
                        )

                    if i % 2:
                        llm_ms, chain_ms = ask_direct(), ask_chain()
                    else:
                        chain_ms, llm_ms = ask_chain(), ask_direct()
                    if i >= 2:  # the first two are warm-up
                        direct.append(llm_ms)
                        chain.append(chain_ms)
        finally:
            for service in services:
                service.stop()
            redis.stop()  # type: ignore[attr-defined]
    p50_direct, p50_chain = statistics.median(direct), statistics.median(chain)
    added = p50_chain - p50_direct
    verdict = "reached" if added <= GOAL_MS else "NOT reached"
    report = "\n".join(
        [
            f"{args.runs} alternating runs, SmolLM2-135M on 1 llama.cpp thread, safety off, no retrieval, 2 CPU cores.",
            "",
            "| path | TTFT p50 ms | TTFT p90 ms |",
            "| --- | --- | --- |",
            f"| llm service alone | {p50_direct:.1f} | {statistics.quantiles(direct, n=10)[-1]:.1f} |",
            f"| gateway -> orchestrator -> llm | {p50_chain:.1f} | {statistics.quantiles(chain, n=10)[-1]:.1f} |",
            "",
            f"Added by the chain at p50: {added:.1f} ms (goal <= {GOAL_MS:.0f} ms: {verdict}).",
        ]
    )
    print(report)
    RESULTS.write_text("# Time to first token through the chain\n\n" + report + "\n")
    goal = Goal(
        f"gateway -> orchestrator -> llm adds <= {GOAL_MS:.0f} ms TTFT at p50",
        f"{added:+.1f} ms ({p50_chain:.1f} vs {p50_direct:.1f} ms)",
        added <= GOAL_MS,
        p50_chain / p50_direct,
    )
    record_goals(__file__, [goal])


if __name__ == "__main__":
    main()
