"""Embedding service throughput: 64 concurrent clients with one text each vs the model in-process.

In-process, two layouts at their best batch sizes: the model's own `encode`, one call at a time on
every core (the goal's reference), and the service's layout without the service
(`EMBEDDING_MODEL_WORKERS` calls at once, each on its share of the cores), reported as a stricter
ratio. The service runs as a real uvicorn process on loopback with its dynamic batcher. After the
batch sizes are chosen, three rounds each measure every path once (the model stays loaded here
while the service runs, idle), and the ratio is of the medians. Both run
with the same settings (`EMBEDDING_*` from the environment, e.g. `EMBEDDING_OMP_WAIT_POLICY=active`
to compare spinning model threads). Usage: .venv/bin/python bench/embedding/throughput.py
[--backend onnx-export|torch|onnx ...] (the service's default backend unless given; several are
measured one after another). The default backend writes RESULTS.md, another RESULTS-<backend>.md."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import aiohttp

from rag_devstack.bench import Goal, goals_path, read_goals, record_goals
from rag_devstack.processes import free_port, start_service, wait_ready
from rag_embedding.main import load_embedder
from rag_embedding.ports import Embedder
from rag_embedding.settings import Backend, Settings

CLIENTS = 64
REQUESTS = 1280
ROUNDS = 3
BATCH_SIZES = (8, 16, 32, 64, 128)
SENTENCE = "Retrieval augmented generation grounds answers in passages number {i} of the collection."


def texts(n: int) -> list[str]:
    return [SENTENCE.format(i=i) for i in range(n)]


@dataclass
class InProcess:
    """One way to run the model in this process: `calls` concurrent `embed` calls on `threads` each."""

    layout: str
    embedder: Embedder
    backend: str
    threads: int
    calls: int
    batch: int = 0

    def rate(self, size: int) -> float:
        if self.backend == "torch":  # torch's thread count is process-wide: set it for this layout
            import torch

            torch.set_num_threads(self.threads)
        self.embedder._batch_size = size  # type: ignore[attr-defined]
        batches = [texts(REQUESTS)[start : start + size] for start in range(0, REQUESTS, size)]
        with ThreadPoolExecutor(self.calls) as pool:
            started = time.perf_counter()
            list(pool.map(self.embedder.embed, batches))
            return REQUESTS / (time.perf_counter() - started)

    def choose_batch(self) -> None:
        self.rate(8)  # warm-up
        rates = {size: self.rate(size) for size in BATCH_SIZES}
        self.batch = max(rates, key=lambda size: rates[size])


def layouts(settings: Settings) -> tuple[InProcess, InProcess]:
    """The model's own `encode`, one call at a time on every core; and the service's layout
    (`workers` calls at once, each on its share of the cores) without the service."""
    plain_settings = settings.model_copy(update={"model_workers": 1})
    plain_threads, layout = plain_settings.model_layout().threads, settings.model_layout()
    return (
        InProcess(
            "one call at a time on every core",
            load_embedder(plain_settings),
            settings.backend,
            threads=plain_threads,
            calls=1,
        ),
        InProcess(
            f"{layout.workers} calls at once, {layout.threads} thread(s) each",
            load_embedder(settings),
            settings.backend,
            threads=layout.threads,
            calls=layout.workers,
        ),
    )


async def through_service(url: str) -> tuple[float, float]:
    """aiohttp as the load generator: it shares the 2 cores with the service, and httpx's client costs
    several times more CPU per request under concurrency (encode/httpx#3215)."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for text in texts(REQUESTS):
        queue.put_nowait(text)
    latencies: list[float] = []

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            text = queue.get_nowait()
            started = time.perf_counter()
            async with session.post(f"{url}/v1/embeddings", json={"input": text}) as response:
                response.raise_for_status()
                await response.read()
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as session:
        warm_up = [session.post(f"{url}/v1/embeddings", json={"input": t}) for t in texts(CLIENTS)]
        for response in await asyncio.gather(*warm_up):
            response.release()
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - started
    return REQUESTS / elapsed, statistics.median(latencies) * 1000


def wait_policy(settings: Settings) -> str:
    if settings.backend != "torch":
        return ""
    return f" torch threads wait: {settings.omp_wait_policy} (EMBEDDING_OMP_WAIT_POLICY), on both paths."


@dataclass
class Rounds:
    """Each path measured once per round, the rounds one after another, so that a machine that
    slows down or speeds up meanwhile moves every path alike."""

    plain: list[float]
    parallel: list[float]
    served: list[float]
    p50_ms: list[float]

    def row(self, rates: list[float]) -> str:
        return f"{statistics.median(rates):.0f} ({min(rates):.0f}-{max(rates):.0f})"


def measure(plain: InProcess, parallel: InProcess, service_url: str) -> Rounds:
    rounds = Rounds([], [], [], [])
    for _ in range(ROUNDS):
        rounds.plain.append(plain.rate(plain.batch))
        rounds.parallel.append(parallel.rate(parallel.batch))
        served, p50_ms = asyncio.run(through_service(service_url))
        rounds.served.append(served)
        rounds.p50_ms.append(p50_ms)
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", nargs="+", choices=get_args(Backend), default=[Settings().backend])
    backends = parser.parse_args().backend
    if len(backends) == 1:
        record_goals(__file__, [bench_backend(backends[0])])
        return
    # One process per backend: torch's OpenMP wait policy is fixed by whatever loads torch first.
    goals: list[Goal] = []
    for backend in backends:
        subprocess.run([sys.executable, __file__, "--backend", backend], check=True)
        goals += read_goals(goals_path(__file__))
    record_goals(__file__, goals)


def bench_backend(backend: Backend) -> Goal:
    settings = Settings(backend=backend)
    # load_embedder sets OMP_WAIT_POLICY here as in the service, which inherits this environment.
    plain, parallel = layouts(settings)
    plain.choose_batch()
    parallel.choose_batch()
    log = Path(tempfile.mkdtemp()) / "embedding.log"
    service = start_service(
        "embedding",
        "rag_embedding.main:create_app",
        host="127.0.0.1",
        port=free_port(),
        env={"EMBEDDING_BACKEND": backend},
        log_path=log,
    )
    try:
        wait_ready(service, 120)
        rounds = measure(plain, parallel, service.url)
    finally:
        service.stop()
    in_process, best_layout = statistics.median(rounds.plain), statistics.median(rounds.parallel)
    served = statistics.median(rounds.served)
    ratio, strict_ratio = served / in_process, served / max(in_process, best_layout)
    verdict = "reached" if ratio >= 0.8 else "NOT reached"
    report = "\n".join(
        [
            f"Median (lowest-highest) of {ROUNDS} rounds, each measuring every path once.",
            "",
            "| path | texts/s |",
            "| --- | --- |",
            f"| in-process, {plain.layout}, best batch size ({plain.batch}) | {rounds.row(rounds.plain)} |",
            f"| in-process, {parallel.layout}, best batch size ({parallel.batch}) | "
            f"{rounds.row(rounds.parallel)} |",
            f"| service, {CLIENTS} concurrent clients, one text per request | {rounds.row(rounds.served)}, "
            f"p50 {statistics.median(rounds.p50_ms):.0f} ms |",
            "",
            f"Ratio service / in-process (the model's own `encode`, one call at a time): {ratio:.2f} "
            f"(goal 0.80: {verdict}).",
            f"Ratio service / the best in-process layout: {strict_ratio:.2f}.{wait_policy(settings)}",
        ]
    )
    print(report)
    results = "RESULTS.md" if backend == Settings().backend else f"RESULTS-{backend}.md"
    (Path(__file__).parent / results).write_text(f"# Embedding throughput ({backend})\n\n" + report + "\n")
    return Goal(
        f"service with 64 one-text clients >= 80% of the model's in-process `encode` at its best batch ({backend})",
        f"{served:.0f} vs {in_process:.0f} texts/s (best in-process layout {max(in_process, best_layout):.0f})",
        ratio >= 0.8,
        ratio,
    )


if __name__ == "__main__":
    main()
