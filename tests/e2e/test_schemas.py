"""Property-based: schemathesis drives every operation of each internal service's OpenAPI; no 5xx.

Against the session stack (real models, Qdrant and Redis), each service's own `/openapi.json`,
with the internal token the stack gave it. A 501 passes only where the operation documents it (a
feature this stack does not configure). Bounded: a few generated cases per operation, fewer where a
valid case runs a model, no shrinking database. The gateway has its own (services/gateway/tests).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from .conftest import Stack

pytestmark = pytest.mark.e2e

INTERNAL = ("embedding", "retrieval", "llm", "safety", "orchestrator")
EXAMPLES_PER_OPERATION = 8
# A valid case of these runs generation; each costs seconds on a CPU.
GENERATING = ("/v1/chat/completions", "/v1/grounded/completions", "/v1/rag/")
EXAMPLES_PER_GENERATING_OPERATION = 3
INTERNAL_TOKEN_HEADER = "X-Internal-Token"


def _headers(stack: Stack, name: str) -> dict[str, str]:
    token = stack.envs[name].get("RAG_INTERNAL_TOKEN")
    return {INTERNAL_TOKEN_HEADER: token} if token else {}


def _examples(operation: Any) -> int:
    generating = any(operation.path.startswith(prefix) for prefix in GENERATING)
    return EXAMPLES_PER_GENERATING_OPERATION if generating else EXAMPLES_PER_OPERATION


def fuzz(operation: Any, url: str, headers: dict[str, str], failures: list[str]) -> int:
    """Runs the generated cases of one operation; returns how many were sent."""
    sent = 0

    @given(case=operation.as_strategy())
    @settings(
        max_examples=_examples(operation),
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        response = case.call(base_url=url, headers=headers, timeout=60)
        documented = str(response.status_code) in operation.definition.raw.get("responses", {})
        if response.status_code >= 500 and not (response.status_code == 501 and documented):
            request = response.request
            body = (request.body or b"")[:300].decode(errors="replace")
            failures.append(
                f"{request.method} {request.url} {body!r}: {response.status_code} {response.text[:300]}"
            )

    run()
    return sent


@pytest.mark.parametrize("name", INTERNAL)
def test_no_operation_answers_5xx(stack: Stack, name: str) -> None:
    service = stack.services[name]
    headers = _headers(stack, name)
    document = httpx.get(f"{service.url}/openapi.json", headers=headers, timeout=10).json()
    operations = [result.ok() for result in schemathesis.openapi.from_dict(document).get_all_operations()]
    assert len(operations) >= 3
    failures: list[str] = []
    sent = {op.label: fuzz(op, service.url, headers, failures) for op in operations}
    assert min(sent.values()) >= 1, sent
    assert failures == [], "\n".join(failures)
