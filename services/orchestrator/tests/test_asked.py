"""`deps.get_asked`: the tenant, safety policy and caller of a RAG or chat request in one dependency."""

from __future__ import annotations

import asyncio
import contextvars
from types import SimpleNamespace

import pytest
from starlette.requests import Request

from rag_common.errors import BadRequest
from rag_orchestrator import safety_policy, tenancy
from rag_orchestrator.deps import Asked, get_asked
from rag_orchestrator.main import create_app
from rag_orchestrator.settings import Settings


def request_with(headers: dict[str, str]) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/rag/query",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "state": {"pipeline": SimpleNamespace(name="pipeline")},
    }
    return Request(scope)


async def ask(headers: dict[str, str]) -> tuple[Asked, str | None, str | None]:
    """The dependency's answer and the tenant and policy it set, in a context of its own."""

    async def run() -> tuple[Asked, str | None, str | None]:
        asked = await get_asked(request_with(headers))
        return asked, tenancy.current(), safety_policy.current()

    return await asyncio.create_task(run(), context=contextvars.Context())


async def test_the_gateway_headers_name_tenant_policy_and_caller() -> None:
    asked, tenant, policy = await ask(
        {"X-Tenant-ID": "acme", "X-Safety-Policy": "strict", "X-Caller-ID": "k1"}
    )
    assert (asked.tenant, asked.caller) == ("acme", "k1")
    assert asked.pipeline.name == "pipeline"  # type: ignore[attr-defined]
    assert (tenant, policy) == ("acme", "strict")


async def test_a_direct_internal_call_without_headers_gets_the_default_tenant() -> None:
    asked, tenant, policy = await ask({})
    assert asked.tenant == tenancy.tenant_from(None)
    assert asked.caller is None
    assert (tenant, policy) == (tenancy.tenant_from(None), None)


@pytest.mark.parametrize("header", ["X-Tenant-ID", "X-Safety-Policy"])
async def test_a_malformed_header_is_a_bad_request(header: str) -> None:
    with pytest.raises(BadRequest):
        await ask({header: "no spaces allowed"})


def test_the_openapi_documents_the_headers_as_the_other_routes_do() -> None:
    paths = create_app(Settings()).openapi()["paths"]
    documented = {p["name"]: p for p in paths["/v1/collections"]["get"]["parameters"]}
    for operation in (paths["/v1/rag/query"]["post"], paths["/v1/chat/completions"]["post"]):
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert set(parameters) == {"X-Tenant-ID", "X-Safety-Policy", "X-Caller-ID"}
        assert parameters["X-Tenant-ID"] == documented["X-Tenant-ID"]
        assert parameters["X-Safety-Policy"] == documented["X-Safety-Policy"]
