"""What the streaming output guard costs per token: the same answer streamed with and without it.

Real processes on loopback: the llm and safety services and two orchestrators with the same checks,
one holding text back a checked sentence at a time (`ORCHESTRATOR_STREAM_GUARD=true`, the default),
one streaming at once and checking the whole answer after it (`false`). Plain chat, fresh questions,
alternating order. The figure is the whole stream, request to the end, divided by its tokens; both
include the same input check, so the difference is the guard's.
Usage: .venv/bin/python bench/safety/stream_guard.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from rag_devstack.bench import Goal, record_goals
from rag_devstack.processes import ServiceProcess, free_port, start_service, wait_ready

RESULTS = Path(__file__).with_name("STREAM_GUARD.md")
COMMON = {"OTEL_SDK_DISABLED": "true", "LLM_N_THREADS": "1"}


def start(name: str, factory: str, env: dict[str, str], folder: Path) -> ServiceProcess:
    service = start_service(
        name, factory, host="127.0.0.1", port=free_port(), env=COMMON | env, log_path=folder / f"{name}.log"
    )
    wait_ready(service, 180)
    return service


def stream(client: httpx.Client, url: str, question: str) -> tuple[float, int]:
    """(seconds from the request to the end of the stream, completion tokens)"""
    body = {
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 96,
        "stream": True,
        "temperature": 0,
    }
    started = time.perf_counter()
    pieces = tokens = 0
    with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line.removeprefix("data: "))
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                pieces += 1
            usage = chunk.get("usage")
            if usage:
                tokens = usage["completion_tokens"]
    return time.perf_counter() - started, tokens or pieces


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        llm = start("llm", "rag_llm.main:create_app", {}, folder)
        safety = start("safety", "rag_safety.main:create_app", {}, folder)
        urls = {
            "ORCHESTRATOR_LLM_URL": llm.url,
            "ORCHESTRATOR_SAFETY_URL": safety.url,
            "ORCHESTRATOR_REDIS_URL": "",
        }
        guarded = start("guarded", "rag_orchestrator.main:create_app", urls, folder)
        plain = start(
            "plain",
            "rag_orchestrator.main:create_app",
            urls | {"ORCHESTRATOR_STREAM_GUARD": "false"},
            folder,
        )
        per_token: dict[str, list[float]] = {"guarded": [], "plain": []}
        try:
            with httpx.Client(timeout=120) as client:
                for i in range(args.runs + 1):
                    order = [("guarded", guarded), ("plain", plain)][:: 1 if i % 2 else -1]
                    for name, service in order:
                        seconds, tokens = stream(
                            client, service.url, f"Describe the sea in three sentences ({i}{name})."
                        )
                        if i and tokens:
                            per_token[name].append(seconds / tokens * 1000)
        finally:
            for service in (plain, guarded, safety, llm):
                service.stop()
    g, p = statistics.median(per_token["guarded"]), statistics.median(per_token["plain"])
    report = "\n".join(
        [
            f"{args.runs} alternating runs, SmolLM2-135M (1 thread), 96 tokens at most, 2 CPU cores.",
            "",
            "| stream | ms per token, whole stream (median) |",
            "| --- | --- |",
            f"| checked once after the stream (guard off) | {p:.2f} |",
            f"| with the guard (a checked sentence at a time) | {g:.2f} |",
            "",
            f"Added per token: {g - p:+.2f} ms ({(g / p - 1) * 100:+.0f}%).",
        ]
    )
    print(report)
    RESULTS.write_text("# Streaming output guard: cost per token\n\n" + report + "\n")
    goal = Goal(
        "the streaming guard adds no measurable cost per token (<= 5%)",
        f"{g - p:+.2f} ms per token ({g:.2f} vs {p:.2f} ms)",
        g / p <= 1.05,
        g / p,
    )
    record_goals(__file__, [goal])


if __name__ == "__main__":
    main()
