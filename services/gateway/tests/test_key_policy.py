"""A key's safety policy: set at creation (admin API and CLI), stored, listed, and forwarded to the
orchestrator in `X-Safety-Policy`; a client's own `X-Safety-Policy` never passes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from rag_common.http import ServiceClient
from rag_devstack.redis_server import RedisServer
from rag_gateway import proxy as proxy_service

from .conftest import ADMIN_KEY, GatewayFactory, bearer, serve_in_thread
from .test_keys import cli

ADMIN = bearer(ADMIN_KEY)


def header_echo() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/rag/query")
    async def echo(request: Request) -> dict[str, str | None]:
        return {name: request.headers.get(name) for name in ("x-tenant-id", "x-safety-policy")}

    return app


@pytest.fixture
async def orchestrator() -> AsyncIterator[ServiceClient]:
    client = ServiceClient(
        "orchestrator", "http://orchestrator", transport=httpx.ASGITransport(app=header_echo())
    )
    yield client
    await client.aclose()


async def test_a_key_created_with_a_safety_policy_keeps_it_in_the_store(gateway: GatewayFactory) -> None:
    spec = {"tenant": "acme", "name": "support-bot", "safety_policy": "reversible"}
    async with gateway() as client:
        created = await client.post("/v1/admin/keys", json=spec, headers=ADMIN)
        assert created.status_code == 201, created.text
        key_id = created.json()["id"]
        fetched = (await client.get(f"/v1/admin/keys/{key_id}", headers=ADMIN)).json()
        plain = await client.post("/v1/admin/keys", json={"tenant": "acme", "name": "p"}, headers=ADMIN)
    assert created.json()["safety_policy"] == fetched["safety_policy"] == "reversible"
    assert plain.json()["safety_policy"] is None


@pytest.mark.parametrize("name", ["", "has space", "x" * 129, "-leading-dash"])
async def test_a_malformed_safety_policy_name_is_422_at_creation(gateway: GatewayFactory, name: str) -> None:
    spec = {"tenant": "acme", "name": "k", "safety_policy": name}
    async with gateway() as client:
        response = await client.post("/v1/admin/keys", json=spec, headers=ADMIN)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_cli_sets_a_keys_safety_policy(redis_server: RedisServer) -> None:
    made = cli(redis_server, "create", "--tenant", "cli", "--name", "bot", "--safety-policy", "strict")
    assert made.returncode == 0, made.stderr
    listed = json.loads(cli(redis_server, "list", "--tenant", "cli").stdout)["keys"]
    assert [k["safety_policy"] for k in listed if k["id"] == json.loads(made.stdout)["id"]] == ["strict"]


async def test_the_keys_safety_policy_is_forwarded_as_a_header(orchestrator: ServiceClient) -> None:
    response = await proxy_service.forward(
        orchestrator, "/v1/rag/query", b"{}", tenant="acme", headers={}, safety_policy="strict"
    )
    assert json.loads(bytes(response.body)) == {"x-tenant-id": "acme", "x-safety-policy": "strict"}


async def test_without_a_key_policy_no_safety_policy_header_reaches_the_orchestrator(
    orchestrator: ServiceClient,
) -> None:
    response = await proxy_service.forward(orchestrator, "/v1/rag/query", b"{}", tenant="acme", headers={})
    assert json.loads(bytes(response.body)) == {"x-tenant-id": "acme", "x-safety-policy": None}


async def test_a_clients_own_safety_policy_header_is_not_passed_on(gateway: GatewayFactory) -> None:
    url, stop = serve_in_thread(header_echo())
    try:
        async with gateway(orchestrator_url=url) as client:
            created = await client.post("/v1/admin/keys", json={"tenant": "acme", "name": "k"}, headers=ADMIN)
            key = bearer(created.json()["key"]) | {"X-Safety-Policy": "lenient"}
            answer = await client.post("/v1/rag/query", json={"question": "hi"}, headers=key)
    finally:
        stop()
    assert answer.status_code == 200
    assert answer.json() == {"x-tenant-id": "acme", "x-safety-policy": None}


def routing_echo() -> FastAPI:
    """Echoes what identifies the caller upstream and answers with the orchestrator's routing headers."""
    app = FastAPI()

    @app.post("/v1/rag/query")
    async def echo(request: Request) -> JSONResponse:
        seen = {name: request.headers.get(name) for name in ("x-safety-policy", "x-caller-id")}
        routing = {"X-Model": "small", "X-Experiment": "prompts", "X-Variant": "b"}
        return JSONResponse(seen, headers=routing)

    return app


async def test_a_query_carries_the_keys_policy_and_id_upstream_and_the_routing_headers_back(
    gateway: GatewayFactory,
) -> None:
    url, stop = serve_in_thread(routing_echo())
    try:
        async with gateway(orchestrator_url=url) as client:
            spec = {"tenant": "acme", "name": "bot", "safety_policy": "strict"}
            created = (await client.post("/v1/admin/keys", json=spec, headers=ADMIN)).json()
            answer = await client.post(
                "/v1/rag/query",
                json={"question": "hi"},
                headers=bearer(created["key"]) | {"X-Caller-ID": "someone-else"},
            )
    finally:
        stop()
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"x-safety-policy": "strict", "x-caller-id": created["id"]}
    assert created["key"] not in answer.text
    routing = {name: answer.headers.get(name) for name in ("x-model", "x-experiment", "x-variant")}
    assert routing == {"x-model": "small", "x-experiment": "prompts", "x-variant": "b"}
