"""Faults across real processes: leaves killed under steady load, slow and silent links, Redis killed,
and an ingestion job that outlives the retrieval service.

The orchestrator reaches every leaf through a fault-injecting TCP proxy (`rag_devstack.faultproxy`),
so a test can slow a link down or make it swallow requests without touching the services.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from rag_devstack.faultproxy import FaultProxy
from rag_devstack.topology import LEAVES

from .conftest import API_KEY, Stack, running_stack

pytestmark = pytest.mark.e2e

COLLECTION = "faults"
UPSTREAM_TIMEOUT_S = 8.0
BREAKER_FAILURES = 3
BREAKER_COOLDOWN_S = 2.0
# Time a failed request may take past its timeout: retries' backoff, the gateway hop, a busy CPU.
SLACK_S = 3.0
RECOVERY_S = 30.0
AUTH = {"Authorization": f"Bearer {API_KEY}"}
DOCUMENTS = [
    {"id": "etna", "text": "Mount Etna is an active stratovolcano on the east coast of Sicily."},
    {"id": "sourdough", "text": "Sourdough bread is leavened by a starter of wild yeast and bacteria."},
]
# A request that needs none of the killed leaf, to show the rest of the stack keeps working.
UNAFFECTED_PROBE = {
    "embedding": ("GET", "/v1/collections", None),
    "retrieval": ("POST", "/v1/embeddings", {"input": "still up?"}),
    "llm": ("POST", "/v1/embeddings", {"input": "still up?"}),
    "safety": ("GET", "/v1/collections", None),
}


@dataclass
class Faulty:
    stack: Stack
    proxies: dict[str, FaultProxy]


@pytest.fixture(scope="module")
def faulty() -> Iterator[Faulty]:
    proxies: dict[str, FaultProxy] = {}

    def through_proxies(ports: dict[str, int], envs: dict[str, dict[str, str]]) -> None:
        for leaf in LEAVES:
            proxies[leaf] = FaultProxy("127.0.0.1", ports[leaf]).start()
            envs["orchestrator"][f"ORCHESTRATOR_{leaf.upper()}_URL"] = proxies[leaf].url
        envs["orchestrator"] |= {
            "ORCHESTRATOR_UPSTREAM_TIMEOUT_S": str(UPSTREAM_TIMEOUT_S),
            "ORCHESTRATOR_EMBED_TIMEOUT_S": str(UPSTREAM_TIMEOUT_S),
            "ORCHESTRATOR_RETRIEVAL_TIMEOUT_S": str(UPSTREAM_TIMEOUT_S),
            "ORCHESTRATOR_SAFETY_TIMEOUT_S": str(UPSTREAM_TIMEOUT_S),
            "ORCHESTRATOR_LLM_TIMEOUT_S": "60",
            "ORCHESTRATOR_UPSTREAM_RETRIES": "1",
            "ORCHESTRATOR_UPSTREAM_BREAKER_FAILURES": str(BREAKER_FAILURES),
            "ORCHESTRATOR_UPSTREAM_BREAKER_COOLDOWN_S": str(BREAKER_COOLDOWN_S),
            "ORCHESTRATOR_JOB_BATCH_DOCUMENTS": "8",
            "ORCHESTRATOR_JOB_RETRY_BACKOFF_S": "[1, 2, 3, 5, 5, 5, 5, 5]",
        }
        envs["gateway"] |= {
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "100000",
            "GATEWAY_TENANT_RATE_LIMIT_PER_MINUTE": "100000",
            "GATEWAY_TOKENS_PER_MINUTE": "100000000",
            "GATEWAY_TENANT_TOKENS_PER_MINUTE": "100000000",
        }

    try:
        with running_stack(through_proxies) as stack:
            response = httpx.post(
                f"{stack.gateway_url}/v1/documents",
                json={"collection": COLLECTION, "documents": DOCUMENTS},
                headers=AUTH,
                timeout=120,
            )
            assert response.status_code == 200, response.text
            yield Faulty(stack, proxies)
    finally:
        for proxy in proxies.values():
            proxy.stop()


_question_numbers = itertools.count()


def ask(client: httpx.Client) -> httpx.Response:
    """A question never asked before, so no cache layer answers in place of the services."""
    question = f"Where is Mount Etna? (asked {next(_question_numbers)})"
    return client.post(
        "/v1/rag/query", json={"collection": COLLECTION, "question": question, "max_tokens": 4}, headers=AUTH
    )


@dataclass
class Outcome:
    status: int
    service: str | None
    seconds: float
    finished_at: float


@dataclass
class SteadyLoad:
    """Queries one after another in a thread, every outcome recorded."""

    url: str
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> SteadyLoad:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=120)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                response = ask(client)
                service = response.json().get("service") if response.status_code >= 400 else None
                self.outcomes.append(
                    Outcome(response.status_code, service, time.monotonic() - started, time.monotonic())
                )

    def successes_after(self, moment: float) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 200 and o.finished_at > moment]


def wait_until(predicate: object, timeout_s: float, what: str) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


@pytest.mark.parametrize("leaf", LEAVES)
def test_a_leaf_killed_under_steady_load_fails_fast_naming_it_and_recovers_by_itself(
    faulty: Faulty, leaf: str
) -> None:
    stack = faulty.stack
    upstream_pids = {name: stack.services[name].process.pid for name in ("gateway", "orchestrator")}
    with SteadyLoad(stack.gateway_url) as load, httpx.Client(base_url=stack.gateway_url, timeout=30) as probe:
        wait_until(lambda: load.successes_after(0), 120, "a first answer before the fault")
        stack.services[leaf].process.kill()
        killed_at = time.monotonic()
        wait_until(
            lambda: any(o.status == 503 and o.finished_at > killed_at for o in load.outcomes),
            UPSTREAM_TIMEOUT_S * 4 + SLACK_S,
            f"a 503 while {leaf} is down",
        )
        method, path, body = UNAFFECTED_PROBE[leaf]
        unaffected = probe.request(method, path, json=body, headers=AUTH)
        assert unaffected.status_code == 200, unaffected.text
        stack.restart(leaf)
        ready_at = time.monotonic()
        recovered_at = wait_until(
            lambda: load.successes_after(ready_at), RECOVERY_S, f"an answer after {leaf} is back"
        )

    failures = [o for o in load.outcomes if o.status != 200]
    assert failures, f"no request noticed that {leaf} was down"
    assert {(o.status, o.service) for o in failures} == {(503, leaf)}
    assert max(o.seconds for o in failures) <= UPSTREAM_TIMEOUT_S * 2 + SLACK_S
    assert recovered_at - ready_at <= RECOVERY_S
    assert {name: stack.services[name].process.pid for name in upstream_pids} == upstream_pids


def test_a_slow_leaf_times_out_then_the_breaker_fails_fast_then_closes_again(faulty: Faulty) -> None:
    proxy = faulty.proxies["retrieval"]
    with httpx.Client(base_url=faulty.stack.gateway_url, timeout=60) as client:
        assert ask(client).status_code == 200
        proxy.set_latency(UPSTREAM_TIMEOUT_S + 2)
        try:
            timed: list[tuple[httpx.Response, float]] = []
            for _ in range(BREAKER_FAILURES + 2):
                started = time.monotonic()
                timed.append((ask(client), time.monotonic() - started))
        finally:
            proxy.set_latency(0)
        for response, _seconds in timed:
            assert response.status_code == 503, response.text
            assert response.json()["service"] == "retrieval"
        assert all(seconds <= UPSTREAM_TIMEOUT_S * 2 + SLACK_S for _, seconds in timed)
        assert timed[0][1] >= UPSTREAM_TIMEOUT_S
        fast = timed[-1]
        assert fast[1] < 1.0, "an open breaker answers without waiting for the slow leaf"
        assert "circuit" in fast[0].json()["detail"].lower()
        time.sleep(BREAKER_COOLDOWN_S)
        wait_until(
            lambda: ask(client).status_code == 200, RECOVERY_S, "an answer once the leaf is fast again"
        )


def test_a_leaf_that_swallows_requests_is_a_503_within_the_timeout_never_a_hang(faulty: Faulty) -> None:
    proxy = faulty.proxies["safety"]
    with httpx.Client(base_url=faulty.stack.gateway_url, timeout=60) as client:
        proxy.set_mode("blackhole")
        try:
            started = time.monotonic()
            response = ask(client)
            seconds = time.monotonic() - started
        finally:
            proxy.set_mode("pass")
        assert response.status_code == 503, response.text
        assert response.json()["service"] == "safety"
        assert seconds <= UPSTREAM_TIMEOUT_S * 2 + SLACK_S
        time.sleep(BREAKER_COOLDOWN_S)
        wait_until(lambda: ask(client).status_code == 200, RECOVERY_S, "an answer once safety answers again")


def test_redis_killed_is_a_quick_503_and_everything_works_after_its_restart(faulty: Faulty) -> None:
    stack = faulty.stack
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        assert ask(client).status_code == 200
        stack.redis.process.kill()
        stack.redis.process.wait(timeout=5)
        try:
            started = time.monotonic()
            refused = ask(client)
            seconds = time.monotonic() - started
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["service"] == "redis"
            assert seconds < 5.0
            answered = _ask_orchestrator_directly(stack)
            assert answered.status_code == 200, "the orchestrator bypasses its cache while Redis is down"
            assert answered.json()["cached"] is False
        finally:
            stack.restart_redis()
        wait_until(lambda: ask(client).status_code == 200, RECOVERY_S, "an answer after Redis is back")


def _ask_orchestrator_directly(stack: Stack) -> httpx.Response:
    token = stack.envs["orchestrator"].get("RAG_INTERNAL_TOKEN")
    headers = {"X-Tenant-ID": "dev"} | ({"X-Internal-Token": token} if token else {})
    return httpx.post(
        f"{stack.services['orchestrator'].url}/v1/rag/query",
        json={"collection": COLLECTION, "question": "Where is Etna, with Redis down?", "max_tokens": 4},
        headers=headers,
        timeout=60,
    )


def test_an_ingestion_job_outlives_the_retrieval_service_and_loses_nothing(faulty: Faulty) -> None:
    stack = faulty.stack
    collection = "faults-job"
    documents = [
        {
            "id": f"doc-{i:03d}",
            "text": f"Record {i}: the lighthouse keeper logged {i * 7} ships in storm {i}. " * 3,
        }
        for i in range(96)
    ]
    with httpx.Client(base_url=stack.gateway_url, timeout=60) as client:
        submitted = client.post(
            "/v1/documents/jobs", json={"collection": collection, "documents": documents}, headers=AUTH
        )
        assert submitted.status_code == 202, submitted.text
        job_url = f"/v1/documents/jobs/{submitted.json()['job_id']}"

        def job() -> dict[str, object]:
            response = client.get(job_url, headers=AUTH)
            assert response.status_code == 200, response.text
            return dict(response.json())

        wait_until(lambda: job()["documents_done"] > 0, 120, "the job's first batch")
        stack.services["retrieval"].process.kill()
        time.sleep(2)
        stack.restart("retrieval")
        wait_until(lambda: job()["status"] in ("succeeded", "failed"), 300, "the job to finish")
        final = job()
        assert final["status"] == "succeeded", final
        assert final["documents_done"] == final["documents_total"] == len(documents)
        assert final["retries"] >= 1

        listed = client.get(f"/v1/collections/{collection}/documents", headers=AUTH).json()["documents"]
        assert sorted(d["document_id"] for d in listed) == [d["id"] for d in documents]
        for document in documents:
            detail = client.get(
                f"/v1/collections/{collection}/documents/{document['id']}", headers=AUTH
            ).json()
            _assert_chunks_hold_the_document(document["text"], detail["chunks"])


def _assert_chunks_hold_the_document(text: str, chunks: list[dict[str, object]]) -> None:
    """Every chunk is the document's text at its span, and the spans cover every non-blank character."""
    covered = [False] * len(text)
    for chunk in chunks:
        start, end = int(chunk["start"]), int(chunk["end"])  # type: ignore[call-overload]
        assert text[start:end] == chunk["text"], f"chunk {chunk['chunk_index']} differs from its source span"
        covered[start:end] = [True] * (end - start)
    missing = [i for i, character in enumerate(text) if not covered[i] and not character.isspace()]
    assert not missing, f"characters {missing[:5]}... of the document are in no chunk"
