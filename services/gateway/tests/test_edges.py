"""What the gateway adds at its edges: the tenant header upstream, CORS, Server-Timing."""

from __future__ import annotations

import re

from .conftest import ADMIN_KEY, DEV_KEY, GatewayFactory, bearer


async def test_tenant_comes_from_the_key_and_a_client_header_is_dropped(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        created = await client.post(
            "/v1/admin/keys", json={"tenant": "acme", "name": "n"}, headers=bearer(ADMIN_KEY)
        )
        key = bearer(created.json()["key"])
        spoofed = await client.post(
            "/v1/rag/query", json={"question": "q"}, headers=key | {"X-Tenant-ID": "globex"}
        )
        dev = await client.post("/v1/rag/query", json={"question": "q"}, headers=bearer(DEV_KEY))
    assert spoofed.json()["tenant"] == "acme"
    assert dev.json()["tenant"] == "dev"


async def test_server_timing_gives_the_gateway_overhead_and_passes_the_orchestrators(
    gateway: GatewayFactory,
) -> None:
    async with gateway() as client:
        response = await client.post("/v1/rag/query", json={"question": "sleep=0.2"}, headers=bearer(DEV_KEY))
        refused = await client.post("/v1/rag/query", json={"question": "q"})
    found = re.fullmatch(r"gateway;dur=([0-9.]+), orchestrator;dur=7\.5", response.headers["server-timing"])
    assert found, response.headers["server-timing"]
    assert float(found.group(1)) < 200, "the 200 ms spent upstream is not the gateway's"
    assert refused.headers["server-timing"].startswith("gateway;dur=")


async def test_cors_allows_configured_origins_only(gateway: GatewayFactory) -> None:
    async with gateway(cors_origins="https://app.example, https://admin.example") as client:
        preflight = await client.options(
            "/v1/rag/query",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        simple = await client.post(
            "/v1/rag/query",
            json={"question": "q"},
            headers=bearer(DEV_KEY) | {"Origin": "https://admin.example"},
        )
        foreign = await client.post(
            "/v1/rag/query",
            json={"question": "q"},
            headers=bearer(DEV_KEY) | {"Origin": "https://evil.example"},
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert simple.headers["access-control-allow-origin"] == "https://admin.example"
    assert "ratelimit" in simple.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in foreign.headers


async def test_without_cors_origins_no_cors_headers_are_sent(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        response = await client.post(
            "/v1/rag/query",
            json={"question": "q"},
            headers=bearer(DEV_KEY) | {"Origin": "https://app.example"},
        )
    assert "access-control-allow-origin" not in response.headers
