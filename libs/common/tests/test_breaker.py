"""The circuit breaker on a clock the tests move by hand."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from rag_common.breaker import BreakerState, CircuitBreaker, record_failure_of


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def breaker(clock: ManualClock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, cooldown_s=10.0, clock=clock)


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert breaker.allow()
        breaker.record_failure()


def test_it_stays_closed_below_the_threshold(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)

    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_consecutive_failures_open_it_and_calls_are_refused(breaker: CircuitBreaker) -> None:
    fail(breaker, 3)

    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_a_success_resets_the_failure_count(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    breaker.record_success()
    fail(breaker, 2)

    assert breaker.state is BreakerState.CLOSED


def test_after_the_cooldown_exactly_one_probe_goes_through(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    fail(breaker, 3)
    clock.now += 9.9
    assert not breaker.allow()

    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow(), "a second caller waits for the probe's verdict"


def test_a_successful_probe_closes_it(breaker: CircuitBreaker, clock: ManualClock) -> None:
    fail(breaker, 3)
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()

    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    assert breaker.allow()


def test_a_failed_probe_opens_it_for_another_full_cooldown(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    fail(breaker, 3)
    clock.now += 10
    assert breaker.allow()
    breaker.record_failure()

    assert breaker.state is BreakerState.OPEN
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()


def test_a_probe_without_verdict_frees_the_probe_slot(breaker: CircuitBreaker, clock: ManualClock) -> None:
    fail(breaker, 3)
    clock.now += 10
    assert breaker.allow()
    breaker.release()

    assert breaker.allow(), "the next caller may probe"


def test_nonsense_limits_are_refused(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0, cooldown_s=1.0, clock=clock)


def test_a_named_breaker_publishes_each_state_on_the_gauge(clock: ManualClock) -> None:
    def gauge() -> float | None:
        return REGISTRY.get_sample_value("rag_circuit_breaker_state", {"breaker": "gauge-test"})

    named = CircuitBreaker(failure_threshold=1, cooldown_s=10.0, clock=clock, name="gauge-test")
    assert gauge() == 0

    fail(named, 1)
    assert gauge() == 2
    clock.now += 10
    assert named.allow()
    assert gauge() == 1, "the probe makes it half-open"
    named.record_success()
    assert gauge() == 0


def test_a_deadline_missed_by_a_caller_counts_against_the_named_breaker() -> None:
    named = CircuitBreaker(failure_threshold=2, cooldown_s=10, name="deadline-test")
    record_failure_of("deadline-test")
    assert named.state is BreakerState.CLOSED
    record_failure_of("deadline-test")
    assert named.state is BreakerState.OPEN
    record_failure_of("no-such-breaker")  # nothing registered under that name: nothing to count
