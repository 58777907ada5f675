"""Property-based: schemathesis drives every operation of the gateway's OpenAPI; nothing may answer 5xx.

The gateway runs as a real process (Redis real, the orchestrator a stand-in). Bounded: a fixed number
of generated cases per operation, no shrinking database, and the suite's per-test timeout.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from rag_common.routing import LeanRoute
from rag_devstack.processes import ServiceProcess, free_port, start_service, wait_ready
from rag_devstack.redis_server import RedisServer
from rag_gateway.main import create_app
from rag_gateway.routes import router
from rag_gateway.settings import Settings

from .conftest import ADMIN_KEY, DEV_KEY

EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def gateway_process(redis_server: RedisServer, stand_in_url: str) -> Iterator[ServiceProcess]:
    folder = Path(tempfile.mkdtemp(prefix="rag-schema-"))
    env = {
        "GATEWAY_REDIS_URL": redis_server.url,
        "GATEWAY_ORCHESTRATOR_URL": stand_in_url,
        "GATEWAY_DEV_API_KEY": DEV_KEY,
        "GATEWAY_ADMIN_API_KEY": ADMIN_KEY,
        "GATEWAY_RATE_LIMIT_PER_MINUTE": "100000",
        "GATEWAY_TENANT_RATE_LIMIT_PER_MINUTE": "100000",
        "GATEWAY_TOKENS_PER_MINUTE": "1000000000",
        "GATEWAY_TENANT_TOKENS_PER_MINUTE": "1000000000",
    }
    process = start_service(
        "gateway", "rag_gateway.main:create_app", host="127.0.0.1", port=free_port(), env=env,
        log_path=folder / "gateway.log",
    )  # fmt: skip
    try:
        wait_ready(process, 60)
        yield process
    finally:
        process.stop()


def fuzz(operation: Any, url: str, headers: dict[str, str], failures: list[str]) -> int:
    """Runs the generated cases of one operation; returns how many were sent."""
    sent = 0

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        response = case.call(base_url=url, headers=headers, timeout=30)
        if response.status_code >= 500:
            failures.append(
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}"
            )

    run()
    return sent


def test_no_operation_answers_5xx(gateway_process: ServiceProcess) -> None:
    url = gateway_process.url
    schema = schemathesis.openapi.from_dict(httpx.get(f"{url}/openapi.json", timeout=10).json())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    failures: list[str] = []
    sent: dict[str, int] = {}
    for operation in operations:
        key = ADMIN_KEY if operation.path.startswith("/v1/admin") else DEV_KEY
        sent[operation.label] = fuzz(operation, url, {"Authorization": f"Bearer {key}"}, failures)
    assert min(sent.values()) >= 1, sent
    assert sum(sent.values()) >= 5 * EXAMPLES_PER_OPERATION, sent
    assert failures == [], gateway_process.log_tail(20)


def test_every_operation_but_the_probes_declares_both_credentials() -> None:
    """Generation routes read their credential without FastAPI's security dependencies (one dependency
    on the hot path); their OpenAPI security must still read like every other route's."""
    schema = create_app(Settings()).openapi()
    both = [{"HTTPBearer": []}, {"APIKeyHeader": []}]
    securities = {
        f"{method.upper()} {path}": operation.get("security")
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }
    assert {name for name, security in securities.items() if security != both} == {
        "GET /healthz",
        "GET /readyz",
    }
    assert set(schema["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}


def test_the_generation_routes_skip_fastapis_generic_handling_for_valid_requests() -> None:
    """Their valid requests take `LeanRoute`'s path (rag_common.routing); anything else, FastAPI's."""
    lean = {route.path for route in router.routes if isinstance(route, LeanRoute) and route.is_lean}
    assert lean == {"/v1/rag/query", "/v1/chat/completions"}
