"""One trace per request across all six services, on a stack of its own.

On the shared stack, after the document tests, the retrieval service was once seen recording spans
under a stale trace id. The cause: ingestion jobs were started inside the submitting request and
copied its context, so their calls carried that request's trace long after it ended. Jobs now run
under a root span of their own (`rag_common.telemetry.background_task`, unit-tested in
libs/common/tests/test_tracing.py); these tests keep a fresh stack so they check propagation alone.
"""

from __future__ import annotations

import secrets
import time

import httpx
import pytest

from .conftest import API_KEY, Stack
from .otlp_receiver import ReceivedSpan

pytestmark = pytest.mark.e2e
COLLECTION = "traced"


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def client(own_stack: Stack) -> httpx.Client:
    with httpx.Client(base_url=own_stack.gateway_url, timeout=120.0) as http:
        document = {
            "id": "bread",
            "text": "A sourdough starter is fed with flour and water every day to keep it active.",
        }
        response = http.post(
            "/v1/documents", json={"collection": COLLECTION, "documents": [document]}, headers=auth()
        )
        assert response.status_code == 200, response.text
        yield http


@pytest.mark.parametrize("stream", [False, True], ids=["json", "streamed"])
def test_one_trace_covers_all_six_services(own_stack: Stack, client: httpx.Client, stream: bool) -> None:
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    question = f"How is a sourdough starter kept active? ({'streamed' if stream else 'json'})"
    response = client.post(
        "/v1/rag/query",
        json={"collection": COLLECTION, "question": question, "max_tokens": 16, "stream": stream},
        headers=auth() | {"traceparent": traceparent},
    )
    assert response.status_code == 200, response.text
    expected = {"gateway", "orchestrator", "embedding", "retrieval", "llm", "safety"}

    def orphans() -> list[ReceivedSpan]:
        spans = own_stack.otlp.spans_of(trace_id)
        ids = {s.span_id for s in spans}
        return [s for s in spans if s.parent_span_id not in ids and s.service != "gateway"]

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        {s.service for s in own_stack.otlp.spans_of(trace_id)} != expected or orphans()
    ):
        time.sleep(0.1)
    assert {s.service for s in own_stack.otlp.spans_of(trace_id)} == expected
    assert orphans() == [], "every span below the gateway has its parent in the same trace"
    gateway_roots = [
        s for s in own_stack.otlp.spans_of(trace_id) if s.parent_span_id == traceparent.split("-")[2]
    ]
    assert [s.service for s in gateway_roots] == ["gateway"], "the gateway continues the caller's trace"
