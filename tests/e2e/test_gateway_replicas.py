"""Three gateway processes sharing one Redis: limits hold across replicas under concurrency."""

from __future__ import annotations

import asyncio
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from fastapi import FastAPI

from rag_devstack.processes import ServiceProcess, free_port, start_service, wait_ready
from rag_devstack.redis_server import RedisServer, start_redis

pytestmark = pytest.mark.e2e

ADMIN = {"Authorization": "Bearer replicas-admin-key"}
REPLICAS = 3


def stand_in_orchestrator() -> FastAPI:
    """Speaks the orchestrator's wire format; a question `usage=N sleep=S` sets usage and delay."""
    app = FastAPI()

    @app.post("/v1/rag/query")
    async def rag(body: dict[str, Any]) -> dict[str, Any]:
        question = str(body["question"])
        sleep = re.search(r"sleep=([0-9.]+)", question)
        await asyncio.sleep(float(sleep.group(1)) if sleep else 0)
        used = re.search(r"usage=([0-9]+)", question)
        total = int(used.group(1)) if used else 1
        usage = {"prompt_tokens": 0, "completion_tokens": total, "total_tokens": total}
        return {"answer": "ok", "citations": [], "model": "m", "usage": usage}

    return app


@dataclass
class Cluster:
    gateways: list[ServiceProcess]
    redis: RedisServer

    def url(self, i: int) -> str:
        return self.gateways[i % len(self.gateways)].url


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    folder = Path(tempfile.mkdtemp(prefix="rag-replicas-"))
    server = uvicorn.Server(
        uvicorn.Config(stand_in_orchestrator(), host="127.0.0.1", port=free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    redis_server = start_redis(free_port(), folder / "redis", folder / "redis.log")
    env = {
        "GATEWAY_REDIS_URL": redis_server.url,
        "GATEWAY_ORCHESTRATOR_URL": f"http://127.0.0.1:{server.config.port}",
        "GATEWAY_DEV_API_KEY": "",
        "GATEWAY_ADMIN_API_KEY": ADMIN["Authorization"].removeprefix("Bearer "),
        "GATEWAY_PASSAGE_TOKENS": "0",
        "GATEWAY_TENANT_RATE_LIMIT_PER_MINUTE": "100000",
        "GATEWAY_TENANT_TOKENS_PER_MINUTE": "100000000",
    }
    gateways: list[ServiceProcess] = []
    try:
        for i in range(REPLICAS):
            gateways.append(
                start_service(
                    f"gateway-{i}",
                    "rag_gateway.main:create_app",
                    host="127.0.0.1",
                    port=free_port(),
                    env=env,
                    log_path=folder / f"gateway-{i}.log",
                )
            )
        for gateway in gateways:
            wait_ready(gateway, 60)
        yield Cluster(gateways=gateways, redis=redis_server)
    finally:
        for gateway in gateways:
            gateway.stop()
        redis_server.stop()
        server.should_exit = True
        thread.join(timeout=5)


def issue(cluster: Cluster, tenant: str, **limits: int) -> tuple[dict[str, str], str]:
    spec = {"tenant": tenant, "name": "replica-test", "scopes": ["query"]} | limits
    response = httpx.post(f"{cluster.url(0)}/v1/admin/keys", json=spec, headers=ADMIN, timeout=10)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}, response.json()["id"]


async def fire(cluster: Cluster, key: dict[str, str], body: dict[str, Any], n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return await asyncio.gather(
            *(client.post(f"{cluster.url(i)}/v1/rag/query", json=body, headers=key) for i in range(n))
        )


async def test_200_concurrent_requests_over_3_replicas_admit_exactly_the_limit_of_50(
    cluster: Cluster,
) -> None:
    key, _ = issue(cluster, "replicas", requests_per_minute=50)
    responses = await fire(cluster, key, {"question": "q"}, 200)
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 50
    assert statuses.count(429) == 150
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["ratelimit"].startswith('"per-key";r=0;')
    assert int(refused.headers["retry-after"]) >= 1


async def test_concurrent_token_reservations_over_3_replicas_never_exceed_the_limit(
    cluster: Cluster,
) -> None:
    limit = 1000
    key, key_id = issue(cluster, "tokens", tokens_per_minute=limit, requests_per_minute=1000)
    # Estimate per request: ceil(19 / 4) + 100 = 105 tokens; each really uses 100.
    body = {"question": "usage=100 sleep=0.2", "max_tokens": 100}
    responses = await fire(cluster, key, body, 60)
    admitted = [r for r in responses if r.status_code == 200]
    used = sum(r.json()["usage"]["total_tokens"] for r in admitted)
    assert 0 < used <= limit
    assert len(admitted) < 60
    assert {r.status_code for r in responses} == {200, 429}
    with redis.Redis.from_url(cluster.redis.url) as r:
        for _ in range(100):  # a settlement waits up to 50 ms for the replica's next reservation
            total = int(r.hget(f"rag:win:tokens-per-key:key:{key_id}:cost", "__total") or 0)
            if total == used:
                break
            await asyncio.sleep(0.01)
    assert total == used, "every reservation was settled to the usage really reported"
