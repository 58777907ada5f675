"""What streaming over HTTP through the LLM service costs, against the raw backend in-process.

Same model (the packaged SmolLM2-135M GGUF), same prompt, greedy decoding with a fixed seed, so
both paths generate the same tokens. Runs alternate between the two paths so drift hits both.
  raw:  `LlamaCppBackend.stream` called in this process;
  http: `POST /v1/chat/completions` with `stream: true` to the service under uvicorn on a free
        loopback port, read with httpx as SSE.
Throughput is output tokens over the whole request (first byte asked to last token), TTFT the time
to the first text. Bounded: fixed runs, timeouts on start-up and on every request. Usage:
    .venv/bin/python bench/llm/stream_overhead.py [--runs 7] [--max-tokens 128] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from rag_common.contracts import ChatMessage
from rag_devstack.bench import Goal, record_goals
from rag_llm.backends.llamacpp import LlamaCppBackend
from rag_llm.ports import SamplingParams, StreamEnd

PROMPT = "Write a long story about a dragon who learns to bake bread."
MODEL = "smollm2-135m-instruct"
GOAL = 0.95
RESULTS = Path(__file__).with_name("RESULTS.md")


@dataclass(frozen=True, slots=True)
class Run:
    tokens: int
    seconds: float
    ttft_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


async def raw_run(backend: LlamaCppBackend, params: SamplingParams) -> Run:
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    async for event in backend.stream([ChatMessage(role="user", content=PROMPT)], params):
        if isinstance(event, StreamEnd):
            tokens = event.usage.completion_tokens
        elif first is None:
            first = time.perf_counter()
    ended = time.perf_counter()
    return Run(tokens=tokens, seconds=ended - started, ttft_s=(first or ended) - started)


async def http_run(client: httpx.AsyncClient, params: SamplingParams) -> Run:
    body = {
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "seed": params.seed,
        "stream": True,
    }
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line.removeprefix("data: "))
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            elif first is None and chunk["choices"][0]["delta"].get("content"):
                first = time.perf_counter()
    ended = time.perf_counter()
    return Run(tokens=tokens, seconds=ended - started, ttft_s=(first or ended) - started)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_until_ready(process: subprocess.Popen[bytes], url: str, deadline_s: float = 60.0) -> None:
    deadline, delay = time.monotonic() + deadline_s, 0.05
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    raise TimeoutError(f"{url} not ready after {deadline_s} s")


@contextmanager
def service(threads: int) -> Iterator[str]:
    """The LLM service under uvicorn on a free loopback port, with the same model settings."""
    port = free_port()
    env = os.environ | {
        "LLM_N_THREADS": str(threads),
        "LLM_CONTEXT_WINDOW": "2048",
        "LLM_ENVIRONMENT": "test",
        "LLM_LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "rag_llm.main:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_ready(process, f"http://127.0.0.1:{port}/readyz")
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def measure(args: argparse.Namespace, base_url: str) -> tuple[list[Run], list[Run]]:
    backend = LlamaCppBackend(
        model_name=MODEL, model_path=None, context_window=2048, n_threads=args.threads, gpu_layers=0
    )
    params = SamplingParams(max_tokens=args.max_tokens, temperature=0.0, seed=7)
    raw: list[Run] = []
    http: list[Run] = []
    timeout = httpx.Timeout(120.0, connect=5.0)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:
        await raw_run(backend, params)  # warm-up: page in the weights, build the graphs
        await http_run(client, params)
        for _ in range(args.runs):
            raw.append(await asyncio.wait_for(raw_run(backend, params), 120))
            http.append(await asyncio.wait_for(http_run(client, params), 120))
    await backend.aclose()
    return raw, http


def table(raw: list[Run], http: list[Run], args: argparse.Namespace) -> str:
    raw_tps = statistics.median(r.tokens_per_s for r in raw)
    http_tps = statistics.median(r.tokens_per_s for r in http)
    ratio = http_tps / raw_tps
    verdict = "met" if ratio >= GOAL else "NOT met"
    rows = [
        "| path | tokens/run | tokens/s (median) | TTFT p50 (ms) |",
        "| --- | --- | --- | --- |",
        f"| raw backend, in-process | {raw[0].tokens} | {raw_tps:.1f} | "
        f"{statistics.median(r.ttft_s for r in raw) * 1000:.1f} |",
        f"| HTTP SSE through the service | {http[0].tokens} | {http_tps:.1f} | "
        f"{statistics.median(r.ttft_s for r in http) * 1000:.1f} |",
    ]
    return "\n".join(
        [
            "# LLM stream overhead",
            "",
            f"SmolLM2-135M-Instruct GGUF, llama.cpp with {args.threads} thread(s), greedy, "
            f"max_tokens={args.max_tokens}, {args.runs} runs per path (alternating) after one warm-up each, "
            f"{os.cpu_count()} CPU cores, loopback.",
            "",
            *rows,
            "",
            f"HTTP/raw throughput ratio: **{ratio:.1%}** (goal >= {GOAL:.0%}: {verdict}).",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads on both paths")
    args = parser.parse_args()
    with service(args.threads) as base_url:
        raw, http = asyncio.run(measure(args, base_url))
    if {r.tokens for r in raw} != {r.tokens for r in http}:
        print("warning: the two paths generated different token counts", file=sys.stderr)
    report = table(raw, http, args)
    print(report)
    RESULTS.write_text(report)
    raw_tps = statistics.median(r.tokens_per_s for r in raw)
    http_tps = statistics.median(r.tokens_per_s for r in http)
    goal = Goal(
        f"SSE through the llm service keeps >= {GOAL:.0%} of raw tokens/s",
        f"{http_tps:.1f} vs {raw_tps:.1f} tokens/s",
        http_tps / raw_tps >= GOAL,
        http_tps / raw_tps,
    )
    record_goals(__file__, [goal])


if __name__ == "__main__":
    main()
