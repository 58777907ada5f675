"""The gateway's cost (auth + rate limits + forwarding) and the answer-cache path, on real processes.

The same cache-hit RAG query is sent to the orchestrator directly and through the gateway, with the
gateway's upstream client on httpx-aiohttp (its default) and on plain httpx (two gateway processes,
same Redis, same orchestrator). One client, alternating paths: latency p50. Then 64 concurrent clients (aiohttp,
in this process, beside the services on the same cores) for a fixed time per path: requests/s.
Usage: .venv/bin/python bench/gateway/overhead.py [--requests 400] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path

import aiohttp
import httpx

from rag_devstack.bench import BENCH_STACK_ENV, Goal, record_goals
from rag_devstack.processes import ServiceProcess, free_port, start_service, wait_ready
from rag_devstack.stack import LocalStack, local_stack

KEY = "bench-key"
COLLECTION = "bench"
QUERY = {"collection": COLLECTION, "question": "Where is Mount Etna?", "max_tokens": 8}
CLIENTS = 64
RESULTS = Path(__file__).with_name("RESULTS.md")


def paths(stack: LocalStack, httpx_gateway: ServiceProcess) -> dict[str, tuple[str, dict[str, str]]]:
    direct_headers = {
        "X-Tenant-ID": "dev",
        "X-Internal-Token": stack.envs["orchestrator"]["RAG_INTERNAL_TOKEN"],
    }
    auth = {"Authorization": f"Bearer {KEY}"}
    return {
        "orchestrator directly": (f"{stack.url('orchestrator')}/v1/rag/query", direct_headers),
        "gateway, httpx-aiohttp upstream (default)": (f"{stack.gateway_url}/v1/rag/query", auth),
        "gateway, plain httpx upstream": (f"{httpx_gateway.url}/v1/rag/query", auth),
    }


def fill_cache(stack: LocalStack) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    documents = [
        {"id": "etna", "text": "Mount Etna is an active stratovolcano on the east coast of Sicily, Italy."},
        {
            "id": "bread",
            "text": "Sourdough bread is leavened by a starter of wild yeast and lactic bacteria.",
        },
    ]
    with httpx.Client(base_url=stack.gateway_url, timeout=120, headers=auth) as client:
        client.post(
            "/v1/documents", json={"collection": COLLECTION, "documents": documents}
        ).raise_for_status()
        answer = client.post("/v1/rag/query", json=QUERY)
        answer.raise_for_status()
        assert client.post("/v1/rag/query", json=QUERY).json()["cached"], "the second ask must be a cache hit"


def one_client(targets: dict[str, tuple[str, dict[str, str]]], requests: int) -> dict[str, dict[str, float]]:
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    own_ms: dict[str, list[float]] = {name: [] for name in targets}
    with httpx.Client(timeout=30) as client:
        for i in range(requests + 20):
            order = list(targets.items())
            for name, (url, headers) in order[i % len(order) :] + order[: i % len(order)]:
                started = time.perf_counter()
                response = client.post(url, json=QUERY, headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                if i >= 20:  # warm-up
                    latencies[name].append(elapsed)
                    own_ms[name].append(gateway_ms(response.headers.get("server-timing", "")))
    return {
        name: {"p50": statistics.median(values), "p90": statistics.quantiles(values, n=10)[-1],
               "own": statistics.median(own_ms[name])}
        for name, values in latencies.items()
    }  # fmt: skip


def gateway_ms(server_timing: str) -> float:
    for metric in server_timing.split(","):
        name, _, params = metric.strip().partition(";")
        if name == "gateway" and "dur=" in params:
            return float(params.split("dur=")[1].split(";")[0])
    return 0.0


async def many_clients(url: str, headers: dict[str, str], seconds: float) -> tuple[float, int]:
    """Requests per second over `seconds` with CLIENTS concurrent clients, and the count of non-200s."""
    done, errors = 0, 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def client() -> None:
            nonlocal done, errors
            while time.perf_counter() < deadline:
                async with session.post(url, json=QUERY) as response:
                    await response.read()
                    done += 1
                    errors += response.status != 200

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        return done / (time.perf_counter() - started), errors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400, help="per path, one client")
    parser.add_argument("--seconds", type=float, default=8.0, help="per path, 64 clients")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with local_stack(api_key=KEY, extra_env=BENCH_STACK_ENV) as stack:
        httpx_gateway = start_service(
            "gateway-httpx",
            "rag_gateway.main:create_app",
            host="127.0.0.1",
            port=free_port(),
            env=stack.envs["gateway"] | {"GATEWAY_UPSTREAM_TRANSPORT": "httpx"},
            log_path=stack.run_dir / "logs" / "gateway-httpx.log",
        )
        try:
            wait_ready(httpx_gateway, 120)
            fill_cache(stack)
            targets = paths(stack, httpx_gateway)
            latency = one_client(targets, args.requests)
            throughput = {
                name: asyncio.run(many_clients(url, headers, args.seconds))
                for name, (url, headers) in targets.items()
            }
        finally:
            httpx_gateway.stop()
    report(latency, throughput, args, load)


def report(
    latency: dict[str, dict[str, float]],
    throughput: dict[str, tuple[float, int]],
    args: argparse.Namespace,
    load: float,
) -> None:
    direct = "orchestrator directly"
    lines = [
        f"Cache-hit `POST /v1/rag/query`; one client: {args.requests} requests per path, alternating; "
        f"{CLIENTS} clients: {args.seconds:.0f} s per path. Load generator on the same {os.cpu_count()} cores; "
        f"1-minute load average before the run: {load:.2f}.",
        "",
        "| path | p50 ms | p90 ms | gateway's own time p50 (Server-Timing) | req/s, 64 clients | non-200 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, figures in latency.items():
        rps, errors = throughput[name]
        own = f"{figures['own']:.2f} ms" if name != direct else "-"
        lines.append(
            f"| {name} | {figures['p50']:.2f} | {figures['p90']:.2f} | {own} | {rps:.0f} | {errors} |"
        )
    goals = []
    for name in latency:
        if name == direct:
            continue
        added = latency[name]["p50"] - latency[direct]["p50"]
        kept = throughput[name][0] / throughput[direct][0]
        goals += [
            Goal(f"{name}: adds <= 1 ms at p50, one client", f"{added:+.2f} ms", added <= 1.0,
                 latency[name]["p50"] / latency[direct]["p50"]),
            Goal(f"{name}: keeps >= 50% of direct req/s at 64 clients", f"{kept:.0%}", kept >= 0.5, kept),
            Goal(f"{name}: cache hit p50 <= 3 ms", f"{latency[name]['p50']:.2f} ms", latency[name]["p50"] <= 3.0),
            Goal(f"{name}: cache hits >= 1000 req/s", f"{throughput[name][0]:.0f} req/s", throughput[name][0] >= 1000),
        ]  # fmt: skip
    lines += ["", *(f"- {g.goal}: {g.measured} ({'reached' if g.reached else 'NOT reached'})" for g in goals)]
    text = "\n".join(lines)
    print(text)
    RESULTS.write_text("# Gateway overhead and the answer-cache path\n\n" + text + "\n")
    record_goals(__file__, goals)


if __name__ == "__main__":
    main()
