"""Embedding service throughput: 64 concurrent clients with one text each vs the model in-process.

In-process, two layouts at their best batch sizes: the model's own `encode`, one call at a time on
every core (the goal's reference), and the service's layout without the service
(`EMBEDDING_MODEL_WORKERS` calls at once, each on its share of the cores), reported as a stricter
ratio. The service runs as a real uvicorn process on loopback with its dynamic batcher. Both run
with the same settings (`EMBEDDING_*` from the environment, e.g. `EMBEDDING_OMP_WAIT_POLICY=active`
to compare spinning model threads). Usage: .venv/bin/python bench/embedding/throughput.py
[--backend torch|onnx] (torch by default; onnx writes RESULTS-onnx.md)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from rag_devstack.bench import Goal, record_goals
from rag_devstack.processes import free_port, start_service, wait_ready
from rag_embedding.main import load_embedder
from rag_embedding.ports import Embedder
from rag_embedding.settings import Settings

CLIENTS = 64
REQUESTS = 1280
BATCH_SIZES = (8, 16, 32, 64, 128)
SENTENCE = "Retrieval augmented generation grounds answers in passages number {i} of the collection."


def texts(n: int) -> list[str]:
    return [SENTENCE.format(i=i) for i in range(n)]


@dataclass(frozen=True)
class InProcess:
    layout: str
    batch: int
    rate: float


def one_call_at_a_time(settings: Settings) -> InProcess:
    """The plain model: one `embed` at a time on every core, at its best batch size."""
    embedder = load_embedder(settings.model_copy(update={"model_workers": 1}))
    layout = "one call at a time on every core"
    return best_of(layout, lambda size: timed(lambda: embedder.embed(texts(REQUESTS)), embedder, size))


def calls_in_parallel(settings: Settings) -> InProcess:
    """The service's layout without the service: `workers` threads each encoding one batch at a time."""
    layout = settings.model_layout()
    embedder = load_embedder(settings)
    pool = ThreadPoolExecutor(layout.workers)

    def run(size: int) -> None:
        batches = [texts(REQUESTS)[start : start + size] for start in range(0, REQUESTS, size)]
        list(pool.map(embedder.embed, batches))

    name = f"{layout.workers} calls at once, {layout.threads} thread(s) each"
    with pool:
        return best_of(name, lambda size: timed(lambda: run(size), embedder, size))


def timed(work: Callable[[], object], embedder: Embedder, size: int) -> float:
    embedder._batch_size = size  # type: ignore[attr-defined]
    started = time.perf_counter()
    work()
    return REQUESTS / (time.perf_counter() - started)


def best_of(layout: str, rate_at: Callable[[int], float]) -> InProcess:
    rate_at(8)  # warm-up
    rates = {size: rate_at(size) for size in BATCH_SIZES}
    best = max(rates, key=lambda size: rates[size])
    return InProcess(layout, best, rates[best])


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    backend = parser.parse_args().backend
    settings = Settings(backend=backend)
    # load_embedder sets OMP_WAIT_POLICY here as in the service, which inherits this environment.
    plain, parallel = one_call_at_a_time(settings), calls_in_parallel(settings)
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
        served, p50_ms = asyncio.run(through_service(service.url))
    finally:
        service.stop()
    ratio, strict_ratio = served / plain.rate, served / max(plain.rate, parallel.rate)
    verdict = "reached" if ratio >= 0.8 else "NOT reached"
    report = "\n".join(
        [
            "| path | texts/s |",
            "| --- | --- |",
            *(
                f"| in-process, {row.layout}, best batch size ({row.batch}) | {row.rate:.0f} |"
                for row in (plain, parallel)
            ),
            f"| service, {CLIENTS} concurrent clients, one text per request | {served:.0f} (p50 {p50_ms:.0f} ms) |",
            "",
            f"Ratio service / in-process (the model's own `encode`, one call at a time): {ratio:.2f} "
            f"(goal 0.80: {verdict}).",
            f"Ratio service / the best in-process layout: {strict_ratio:.2f}.{wait_policy(settings)}",
        ]
    )
    print(report)
    results = "RESULTS.md" if backend == "torch" else f"RESULTS-{backend}.md"
    (Path(__file__).parent / results).write_text(f"# Embedding throughput ({backend})\n\n" + report + "\n")
    goal = Goal(
        f"service with 64 one-text clients >= 80% of in-process texts/s ({backend})",
        f"{served:.0f} vs {plain.rate:.0f} texts/s (best in-process layout {max(plain.rate, parallel.rate):.0f})",
        ratio >= 0.8,
        ratio,
    )
    record_goals(__file__, [goal])


if __name__ == "__main__":
    main()
