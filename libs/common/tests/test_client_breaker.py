"""The breaker in ServiceClient: a failing upstream is cut off, probed after the cooldown, let back in."""

from __future__ import annotations

import itertools

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel

from rag_common.breaker import BreakerState, CircuitBreaker
from rag_common.errors import UpstreamError, UpstreamUnavailable
from rag_common.http import CircuitOpen, ServiceClient
from rag_common.settings import ServiceSettings

COOLDOWN_S = 10.0
_names = itertools.count()


class Ok(BaseModel):
    ok: bool


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Upstream:
    """A scripted upstream behind httpx.MockTransport: answers `status`, or fails with `error`."""

    def __init__(self) -> None:
        self.calls = 0
        self.status = 200
        self.error: type[httpx.TransportError] | None = None
        self.problem: dict[str, object] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.error is not None:
            raise self.error("scripted failure", request=request)
        if self.status >= 400:
            return httpx.Response(self.status, json={"detail": "scripted", **self.problem})
        return httpx.Response(200, json={"ok": True})


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def name() -> str:
    """A breaker name of its own per test: the gauge is process-wide."""
    return f"breakertest-{next(_names)}"


@pytest.fixture
def client(upstream: Upstream, clock: ManualClock, name: str) -> ServiceClient:
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=COOLDOWN_S, clock=clock, name=name)
    return ServiceClient(
        name,
        "http://upstream",
        retries=1,
        backoff_s=(0.0,),
        transport=httpx.MockTransport(upstream),
        breaker=breaker,
    )


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("rag_circuit_breaker_state", {"breaker": name})


async def fail(client: ServiceClient, times: int) -> None:
    for _ in range(times):
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.call("GET", "/x", Ok, idempotent=True)
        assert not isinstance(caught.value, CircuitOpen)


async def test_consecutive_5xx_after_retries_open_it_and_calls_fail_fast_without_a_request(
    client: ServiceClient, upstream: Upstream, name: str
) -> None:
    upstream.status = 503
    await fail(client, 3)
    assert upstream.calls == 6, "each call was tried twice (one retry) before counting as one failure"

    with pytest.raises(CircuitOpen) as caught:
        await client.call("GET", "/x", Ok, idempotent=True)

    assert upstream.calls == 6, "an open breaker sends nothing"
    error = caught.value
    assert error.status_code == 503
    assert error.service == name
    assert error.type_slug == "circuit-open"
    assert error.headers["Retry-After"] == "10"
    assert f"The {name} service" in error.detail
    assert "circuit open, retrying in 10 s" in error.detail
    assert gauge(name) == 2


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError])
async def test_transport_errors_and_timeouts_count_as_failures(
    client: ServiceClient, upstream: Upstream, error: type[httpx.TransportError]
) -> None:
    upstream.error = error
    await fail(client, 3)

    assert client.breaker is not None
    assert client.breaker.state is BreakerState.OPEN


async def test_retry_after_counts_down_with_the_cooldown(
    client: ServiceClient, upstream: Upstream, clock: ManualClock
) -> None:
    upstream.status = 500
    await fail(client, 3)
    clock.now += 6.5

    with pytest.raises(CircuitOpen) as caught:
        await client.call("GET", "/x", Ok)

    assert caught.value.headers["Retry-After"] == "4"


async def test_after_the_cooldown_one_probe_goes_through_and_its_success_closes_it(
    client: ServiceClient, upstream: Upstream, clock: ManualClock, name: str
) -> None:
    upstream.status = 502
    await fail(client, 3)
    clock.now += COOLDOWN_S
    upstream.status = 200

    assert (await client.call("GET", "/x", Ok)).ok
    assert gauge(name) == 0
    for _ in range(3):
        assert (await client.call("GET", "/x", Ok)).ok
    assert upstream.calls == 6 + 4


async def test_a_failed_probe_opens_it_for_another_cooldown(
    client: ServiceClient, upstream: Upstream, clock: ManualClock, name: str
) -> None:
    upstream.status = 503
    await fail(client, 3)
    clock.now += COOLDOWN_S
    calls_before = upstream.calls

    await fail(client, 1)
    assert upstream.calls == calls_before + 2, "the probe went out (with its retry)"
    with pytest.raises(CircuitOpen):
        await client.call("GET", "/x", Ok)
    assert upstream.calls == calls_before + 2
    assert gauge(name) == 2


async def test_while_the_probe_is_out_other_calls_fail_fast(
    client: ServiceClient, clock: ManualClock, name: str
) -> None:
    breaker = client.breaker
    assert breaker is not None
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    clock.now += COOLDOWN_S
    assert breaker.allow(), "this caller holds the probe"
    assert gauge(name) == 1

    with pytest.raises(CircuitOpen) as caught:
        await client.call("GET", "/x", Ok)
    assert caught.value.headers["Retry-After"] == "1"


async def test_4xx_answers_are_successes_for_the_breaker(
    client: ServiceClient, upstream: Upstream, name: str
) -> None:
    upstream.status = 503
    await fail(client, 2)
    upstream.status = 404
    with pytest.raises(UpstreamError):
        await client.call("GET", "/x", Ok)
    upstream.status = 503
    await fail(client, 2)

    assert client.breaker is not None
    assert client.breaker.state is BreakerState.CLOSED, "the 404 reset the count of consecutive failures"
    assert gauge(name) == 0


async def test_a_503_about_another_service_does_not_count_against_this_one(
    client: ServiceClient, upstream: Upstream
) -> None:
    upstream.status = 503
    upstream.problem = {"service": "llm", "type": "https://rag-platform.dev/problems/circuit-open"}
    for _ in range(5):
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.call("GET", "/x", Ok)
        assert caught.value.service == "llm"
        assert caught.value.type_slug == "circuit-open"

    assert client.breaker is not None
    assert client.breaker.state is BreakerState.CLOSED


async def test_a_cascaded_503_keeps_its_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"service": "llm", "detail": "down"}, headers={"Retry-After": "7"})

    client = ServiceClient("orchestrator", "http://o", retries=0, transport=httpx.MockTransport(handler))
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.call("GET", "/x", Ok)

    assert caught.value.headers["Retry-After"] == "7"


def test_from_settings_gives_each_client_a_breaker_named_after_its_service(name: str) -> None:
    client = ServiceClient.from_settings(
        name,
        "http://upstream",
        ServiceSettings(upstream_breaker_failures=4, upstream_breaker_cooldown_s=2.5),
    )

    assert client.breaker is not None
    assert client.breaker.name == name
    assert gauge(name) == 0, "a new client publishes its closed breaker"


@pytest.mark.parametrize(
    "settings",
    [ServiceSettings(upstream_breaker_failures=0), ServiceSettings(upstream_breaker_cooldown_s=0)],
)
async def test_zero_disables_the_breaker(settings: ServiceSettings, name: str) -> None:
    upstream = Upstream()
    upstream.status = 500
    client = ServiceClient.from_settings(
        name,
        "http://upstream",
        settings.model_copy(update={"upstream_retries": 0}),
        transport=httpx.MockTransport(upstream),
    )

    assert client.breaker is None
    for _ in range(8):
        with pytest.raises(UpstreamUnavailable):
            await client.call("GET", "/x", Ok)
    assert upstream.calls == 8
