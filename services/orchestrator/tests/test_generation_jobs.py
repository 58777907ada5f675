"""Generation jobs against a real Redis: the API, the queue shared by workers, takeover, webhooks."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import redis
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr

from rag_common.app import create_service_app
from rag_common.contracts import GenerationJobStatus, IngestRequest, RagQuery, SafetyVerdict
from rag_common.errors import UpstreamUnavailable
from rag_common.metrics import QUEUE_DEPTH
from rag_devstack.processes import free_port
from rag_devstack.redis_server import RedisServer
from rag_orchestrator import rag as rag_service
from rag_orchestrator import safety_policy, tenancy, webhooks
from rag_orchestrator.adapters import redis_cache
from rag_orchestrator.adapters.http_webhook import HttpWebhookSender
from rag_orchestrator.adapters.redis_generation_jobs import PREFIX, RedisGenerationJobs
from rag_orchestrator.generation_job_routes import router
from rag_orchestrator.generation_jobs import GenerationJobStore
from rag_orchestrator.generation_worker import GenerationWorker
from rag_orchestrator.ingest import ingest
from rag_orchestrator.pipeline import Pipeline
from rag_orchestrator.settings import Settings

from .fakes import KeywordSafety, QuotingGenerator

SECRET = "whsec-test"
TTL_S = 600
DOCUMENTS = [
    {"id": "bread", "text": "A sourdough starter is fed with flour and water every day."},
    {"id": "tea", "text": "Green tea is steeped in water below boiling for two minutes."},
]
QUESTION = {"collection": "kitchen", "question": "How is a sourdough starter fed?", "top_k": 2}


class FlakySafety(KeywordSafety):
    """Unreachable for the first `failures` checks, as if the safety service were restarting."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def check(self, text: str, direction: str, tenant: str | None = None) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise UpstreamUnavailable("safety")
        return await super().check(text, direction, tenant)


@dataclasses.dataclass
class Received:
    body: bytes
    headers: dict[str, str]


class WebhookReceiver:
    """A real HTTP server on loopback that records what it is sent and answers `status`."""

    def __init__(self, status: int = 204) -> None:
        self.received: list[Received] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.received.append(Received(self.rfile.read(length), dict(self.headers.items())))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/rag"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def job_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "chunk_size": 120,
        "chunk_overlap": 20,
        "generation_job_ttl_s": TTL_S,
        "generation_job_poll_s": 0.05,
        "generation_job_retry_backoff_s": [0.01, 0.01, 0.01],
        "webhook_secret": SecretStr(SECRET),
        "webhook_allowed_hosts": ["127.0.0.1"],
        "webhook_retry_backoff_s": [0.01, 0.01],
    }
    return Settings(**(base | overrides))


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> str:
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushdb()
    return redis_server.url


@pytest.fixture
async def kitchen(pipeline: Pipeline) -> Pipeline:
    """The fake pipeline with job settings and tenant `acme`'s collection `kitchen` ingested."""
    with_settings = dataclasses.replace(pipeline, settings=job_settings())
    request = IngestRequest(collection=tenancy.physical("acme", "kitchen"), documents=DOCUMENTS)
    await ingest(request, pipeline=with_settings)
    return with_settings


@asynccontextmanager
async def store_on(url: str, timeout_s: float = 1.0) -> AsyncIterator[RedisGenerationJobs]:
    connection = redis_cache.connect(url, timeout_s)
    try:
        yield RedisGenerationJobs(connection, ttl_s=TTL_S)
    finally:
        await connection.aclose()


@asynccontextmanager
async def worker_on(
    url: str, pipeline: Pipeline, consumer: str | None = None
) -> AsyncIterator[GenerationWorker]:
    async with store_on(url) as store:
        sender = HttpWebhookSender(timeout_s=2)
        worker = GenerationWorker(store, pipeline, sender, settings=pipeline.settings, consumer=consumer)
        await worker.start()
        try:
            yield worker
        finally:
            await worker.aclose()
            await sender.aclose()


def api_app(pipeline: Pipeline, store: GenerationJobStore | None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"pipeline": pipeline, "generation_jobs": store}

    return create_service_app(
        service="orchestrator", settings=pipeline.settings, lifespan=lifespan, routers=[router]
    )


@asynccontextmanager
async def api(pipeline: Pipeline, store: GenerationJobStore | None) -> AsyncIterator[httpx.AsyncClient]:
    app = api_app(pipeline, store)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orchestrator") as client:
            yield client


def acme(tenant: str = "acme") -> dict[str, str]:
    return {tenancy.TENANT_HEADER: tenant}


async def wait_for(client: httpx.AsyncClient, job_id: str, *states: str) -> GenerationJobStatus:
    for _ in range(400):
        response = await client.get(f"/v1/rag/jobs/{job_id}", headers=acme())
        assert response.status_code == 200, response.text
        job = GenerationJobStatus.model_validate(response.json())
        if job.status in states and job.webhook != "pending":
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {states}")


@pytest.fixture
def settled_queue(redis_url: str) -> Iterator[None]:
    yield
    with redis.Redis.from_url(redis_url) as r:
        assert r.xlen("rag:genjobs") == 0, "every finished job leaves the queue"


async def test_a_job_answers_as_the_synchronous_pipeline_would(
    redis_url: str, kitchen: Pipeline, settled_queue: None
) -> None:
    gate = asyncio.Event()
    gated = dataclasses.replace(kitchen, safety=KeywordSafety(gate=gate))
    async with store_on(redis_url) as store, api(gated, store) as client:
        submitted = await client.post("/v1/rag/jobs", json=QUESTION, headers=acme())
        assert submitted.status_code == 202, submitted.text
        job = GenerationJobStatus.model_validate(submitted.json())
        assert (job.status, job.collection, job.tenant, job.webhook) == ("queued", "kitchen", "acme", "none")
        assert submitted.headers["location"] == f"/v1/rag/jobs/{job.job_id}"
        assert QUEUE_DEPTH.labels(queue="generation_jobs")._value.get() == 1

        not_yet = await client.get(f"/v1/rag/jobs/{job.job_id}/result", headers=acme())
        assert not_yet.status_code == 409
        assert not_yet.headers["content-type"] == "application/problem+json"
        assert "is queued" in not_yet.json()["detail"]

        async with worker_on(redis_url, gated):
            running = await wait_for(client, job.job_id, "running")
            assert running.attempts == 1
            gate.set()
            done = await wait_for(client, job.job_id, "succeeded")
        result = await client.get(f"/v1/rag/jobs/{job.job_id}/result", headers=acme())

    assert result.status_code == 200, result.text
    expected = await rag_service.answer(
        tenancy.scoped_query(RagQuery.model_validate(QUESTION), "acme"), pipeline=gated
    )
    assert result.json() == expected.model_dump(mode="json")
    assert result.json()["citations"][0]["document_id"] == "bread"
    assert done.updated_at >= done.created_at
    with redis.Redis.from_url(redis_url) as r:
        for key in (PREFIX + job.job_id, PREFIX + job.job_id + ":result", PREFIX + job.job_id + ":request"):
            assert 0 < r.ttl(key) <= TTL_S, key


async def test_another_tenant_never_finds_the_job(redis_url: str, kitchen: Pipeline) -> None:
    async with store_on(redis_url) as store, api(kitchen, store) as client:
        job_id = (await client.post("/v1/rag/jobs", json=QUESTION, headers=acme())).json()["job_id"]
        async with worker_on(redis_url, kitchen):
            await wait_for(client, job_id, "succeeded")
        for path in (f"/v1/rag/jobs/{job_id}", f"/v1/rag/jobs/{job_id}/result"):
            foreign = await client.get(path, headers=acme("globex"))
            assert foreign.status_code == 404, foreign.text
            assert (
                foreign.json()["detail"]
                == f"Generation job '{job_id}' does not exist (finished jobs expire)."
            )
            assert (await client.get(path)).status_code == 404, "a direct call is tenant default"
        unknown = await client.get(f"/v1/rag/jobs/{'0' * 32}", headers=acme())
        assert unknown.status_code == 404


async def test_a_failed_job_records_the_problem_in_the_callers_terms(
    redis_url: str, kitchen: Pipeline
) -> None:
    async with store_on(redis_url) as store, api(kitchen, store) as client:
        missing = QUESTION | {"collection": "pantry"}
        job_id = (await client.post("/v1/rag/jobs", json=missing, headers=acme())).json()["job_id"]
        async with worker_on(redis_url, kitchen):
            failed = await wait_for(client, job_id, "failed", "succeeded")
        result = await client.get(f"/v1/rag/jobs/{job_id}/result", headers=acme())

    assert failed.status == "failed"
    assert failed.error is not None
    assert (failed.error.status, failed.error.detail) == (404, "Collection 'pantry' does not exist.")
    assert failed.retries == 0, "a 404 is not retried"
    assert result.status_code == 409
    assert result.json()["detail"] == f"Generation job '{job_id}' failed: Collection 'pantry' does not exist."


async def test_a_service_away_for_a_while_is_retried_then_the_job_fails_when_it_stays_away(
    redis_url: str, kitchen: Pipeline
) -> None:
    async with store_on(redis_url) as store, api(kitchen, store) as client:
        back = dataclasses.replace(kitchen, safety=FlakySafety(failures=2))
        job_id = (await client.post("/v1/rag/jobs", json=QUESTION, headers=acme())).json()["job_id"]
        async with worker_on(redis_url, back):
            recovered = await wait_for(client, job_id, "succeeded", "failed")
        assert (recovered.status, recovered.retries) == ("succeeded", 2)

        gone = dataclasses.replace(kitchen, safety=FlakySafety(failures=100))
        job_id = (await client.post("/v1/rag/jobs", json=QUESTION, headers=acme())).json()["job_id"]
        async with worker_on(redis_url, gone):
            failed = await wait_for(client, job_id, "succeeded", "failed")
    assert (failed.status, failed.retries) == ("failed", 3)
    assert failed.error is not None
    assert failed.error.status == 503
    assert "safety" in failed.error.detail


async def test_a_job_whose_worker_died_is_taken_over_after_the_idle_time(
    redis_url: str, kitchen: Pipeline, settled_queue: None
) -> None:
    quick = dataclasses.replace(kitchen, settings=job_settings(generation_job_claim_idle_s=0.3))
    async with store_on(redis_url) as store, api(quick, store) as client:
        job_id = (await client.post("/v1/rag/jobs", json=QUESTION, headers=acme())).json()["job_id"]
        await store.ensure_group()
        # A worker takes the entry, starts the job, and dies before it finishes or acknowledges.
        taken = await store.take("dead-worker", idle_ms=300, block_ms=100)
        assert [d.job_id for d in taken] == [job_id]
        job = await store.get(job_id)
        assert job is not None
        await store.save(job.model_copy(update={"status": "running", "attempts": 1}))

        started = time.monotonic()
        async with worker_on(redis_url, quick, consumer="survivor"):
            done = await wait_for(client, job_id, "succeeded")
        assert time.monotonic() - started >= 0.25, "not taken over before the idle time"
    assert done.attempts == 2


async def test_a_live_workers_job_is_never_taken_over(redis_url: str, kitchen: Pipeline) -> None:
    gate = asyncio.Event()
    quick = dataclasses.replace(
        kitchen, safety=KeywordSafety(gate=gate), settings=job_settings(generation_job_claim_idle_s=0.3)
    )
    async with store_on(redis_url) as store, api(quick, store) as client:
        job_id = (await client.post("/v1/rag/jobs", json=QUESTION, headers=acme())).json()["job_id"]
        async with worker_on(redis_url, quick, consumer="first"):
            await wait_for(client, job_id, "running")
            async with worker_on(redis_url, quick, consumer="second"):
                await asyncio.sleep(1.2)  # four idle times: the first worker's heartbeat keeps its claim
                gate.set()
                done = await wait_for(client, job_id, "succeeded")
    assert done.attempts == 1


async def test_a_worker_stopped_mid_job_hands_it_back_to_the_queue(
    redis_url: str, kitchen: Pipeline, settled_queue: None
) -> None:
    gate = asyncio.Event()
    gated = dataclasses.replace(kitchen, safety=KeywordSafety(gate=gate))
    async with store_on(redis_url) as store, api(gated, store) as client:
        job_id = (await client.post("/v1/rag/jobs", json=QUESTION, headers=acme())).json()["job_id"]
        async with worker_on(redis_url, gated):
            await wait_for(client, job_id, "running")
        assert (await store.get(job_id)) is not None
        handed_back = await wait_for(client, job_id, "queued")
        assert handed_back.attempts == 0, "a run handed back at shutdown is not counted"
        gate.set()
        async with worker_on(redis_url, gated):
            done = await wait_for(client, job_id, "succeeded")
    assert done.attempts == 1


async def test_the_webhook_is_signed_with_hmac_and_its_delivery_recorded(
    redis_url: str, kitchen: Pipeline
) -> None:
    with WebhookReceiver(status=500) as refusing, WebhookReceiver() as receiver:
        async with store_on(redis_url) as store, api(kitchen, store) as client, worker_on(redis_url, kitchen):
            ok = QUESTION | {"webhook_url": receiver.url}
            job_id = (await client.post("/v1/rag/jobs", json=ok, headers=acme())).json()["job_id"]
            delivered = await wait_for(client, job_id, "succeeded")
            bad = QUESTION | {"webhook_url": refusing.url}
            refused_id = (await client.post("/v1/rag/jobs", json=bad, headers=acme())).json()["job_id"]
            failed = await wait_for(client, refused_id, "succeeded")

    assert delivered.webhook == "delivered"
    [hook] = receiver.received
    fields = dict(part.split("=", 1) for part in hook.headers["X-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{fields['t']}.".encode() + hook.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    assert abs(int(fields["t"]) - time.time()) < 30
    assert webhooks.verify(SECRET, hook.body, hook.headers["X-Signature"])
    assert not webhooks.verify("another-secret", hook.body, hook.headers["X-Signature"])
    assert not webhooks.verify(SECRET, hook.body + b" ", hook.headers["X-Signature"])
    event = json.loads(hook.body)
    assert (event["job"]["job_id"], event["job"]["status"]) == (job_id, "succeeded")
    assert event["result"]["citations"][0]["document_id"] == "bread"
    assert failed.webhook == "failed"
    assert len(refusing.received) == 3, "the first attempt and one per backoff step"


async def test_webhooks_go_only_to_allow_listed_hosts(redis_url: str, kitchen: Pipeline) -> None:
    async with store_on(redis_url) as store:
        async with api(kitchen, store) as client:
            elsewhere = QUESTION | {"webhook_url": "http://169.254.169.254/latest/meta-data"}
            refused = await client.post("/v1/rag/jobs", json=elsewhere, headers=acme())
            assert refused.status_code == 422
            assert refused.headers["content-type"] == "application/problem+json"
            assert "ORCHESTRATOR_WEBHOOK_ALLOWED_HOSTS" in refused.json()["detail"]
            assert "169.254.169.254" in refused.json()["detail"]
        off = dataclasses.replace(kitchen, settings=job_settings(webhook_allowed_hosts=[]))
        async with api(off, store) as client:
            refused = await client.post(
                "/v1/rag/jobs", json=QUESTION | {"webhook_url": "http://127.0.0.1/x"}, headers=acme()
            )
            assert refused.status_code == 422
            assert "ORCHESTRATOR_WEBHOOK_ALLOWED_HOSTS" in refused.json()["detail"]
        assert await store.depth() == 0, "a refused job is never queued"


async def test_a_job_cannot_stream_and_needs_redis(redis_url: str, kitchen: Pipeline) -> None:
    async with store_on(redis_url) as store, api(kitchen, store) as client:
        streamed = await client.post("/v1/rag/jobs", json=QUESTION | {"stream": True}, headers=acme())
        assert streamed.status_code == 422
    async with api(kitchen, None) as client:
        without = await client.post("/v1/rag/jobs", json=QUESTION, headers=acme())
        assert without.status_code == 503
        assert "ORCHESTRATOR_REDIS_URL" in without.json()["detail"]


async def test_a_job_is_routed_like_a_query_and_a_model_not_allowed_is_refused_at_submit(
    redis_url: str, kitchen: Pipeline, settled_queue: None
) -> None:
    routed = dataclasses.replace(
        kitchen, settings=kitchen.settings.model_copy(update={"allowed_models": ["small", "large"]})
    )
    async with store_on(redis_url) as store, api(routed, store) as client:
        refused = await client.post("/v1/rag/jobs", json=QUESTION | {"model": "gpt-5"}, headers=acme())
        assert refused.status_code == 422, refused.text
        assert refused.json()["allowed_models"] == ["small", "large"]

        submitted = await client.post("/v1/rag/jobs", json=QUESTION | {"model": "large"}, headers=acme())
        assert submitted.status_code == 202, submitted.text
        async with worker_on(redis_url, routed):
            await wait_for(client, submitted.json()["job_id"], "succeeded")
    assert isinstance(routed.generator, QuotingGenerator)
    assert routed.generator.requests[-1].model == "large"


class PolicyRecordingSafety(KeywordSafety):
    """Records the safety policy in force at each check, as the real safety client sends it."""

    def __init__(self) -> None:
        super().__init__()
        self.policies: list[str | None] = []

    async def check(self, text: str, direction: str, tenant: str | None = None) -> SafetyVerdict:
        self.policies.append(safety_policy.current())
        return await super().check(text, direction, tenant)


async def test_a_job_runs_under_the_safety_policy_of_the_key_that_submitted_it(
    redis_url: str, kitchen: Pipeline, settled_queue: None
) -> None:
    recording = PolicyRecordingSafety()
    checked = dataclasses.replace(kitchen, safety=recording)
    headers = acme() | {safety_policy.POLICY_HEADER: "strict"}
    async with store_on(redis_url) as store, api(checked, store) as client:
        submitted = await client.post("/v1/rag/jobs", json=QUESTION, headers=headers)
        assert submitted.status_code == 202, submitted.text
        assert submitted.json()["safety_policy"] == "strict"
        async with worker_on(redis_url, checked):
            await wait_for(client, submitted.json()["job_id"], "succeeded")
    assert recording.policies
    assert set(recording.policies) == {"strict"}
