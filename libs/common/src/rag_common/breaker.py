"""A circuit breaker: stop calling something that keeps failing, probe it again later.

Closed: calls go through; `failure_threshold` consecutive failures open it. Open: calls are
refused until `cooldown_s` has passed. Half-open: exactly one probe call goes through; its success
closes the breaker, its failure opens it for another cooldown. The clock is injectable so tests
can move time by hand. A named breaker publishes every change of state on the
`rag_circuit_breaker_state{breaker=name}` gauge.
"""

from __future__ import annotations

import enum
import math
import time
import weakref
from collections.abc import Callable

from rag_common import metrics

Clock = Callable[[], float]


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_GAUGE_STATES: dict[BreakerState, metrics.BreakerState] = {
    BreakerState.CLOSED: "closed",
    BreakerState.OPEN: "open",
    BreakerState.HALF_OPEN: "half_open",
}


_NAMED: weakref.WeakValueDictionary[str, CircuitBreaker] = weakref.WeakValueDictionary()


def record_failure_of(name: str) -> None:
    """A caller's own deadline ran out while a call to `name` was in flight: the call was cancelled,
    so its breaker saw no verdict; count it as the failure it is (a slow upstream must open it)."""
    breaker = _NAMED.get(name)
    if breaker is not None:
        breaker.record_failure()


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int,
        cooldown_s: float,
        clock: Clock = time.monotonic,
        name: str | None = None,
    ) -> None:
        if failure_threshold < 1 or cooldown_s <= 0:
            raise ValueError("failure_threshold must be >= 1 and cooldown_s > 0")
        self.name = name
        if name is not None:
            _NAMED[name] = self
        self._threshold = failure_threshold
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._published: BreakerState | None = None
        self._publish()

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._probing or self._clock() - self._opened_at >= self._cooldown_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def retry_after_s(self) -> int:
        """Whole seconds until a refused caller may try again (at least 1)."""
        if self._opened_at is None:
            return 1
        remaining = self._cooldown_s - (self._clock() - self._opened_at)
        return max(1, math.ceil(remaining))

    def allow(self) -> bool:
        """Whether a call may go now; in half-open state only the first caller gets `True`."""
        state = self.state
        allowed = state is BreakerState.CLOSED
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = allowed = True
        self._publish()
        return allowed

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False
        self._publish()

    def record_failure(self) -> None:
        self._failures += 1
        if self._probing or self._failures >= self._threshold:
            self._opened_at = self._clock()
            self._probing = False
        self._publish()

    def release(self) -> None:
        """A call that `allow`ed ended with neither verdict (e.g. the client left): free the probe slot."""
        self._probing = False
        self._publish()

    def _publish(self) -> None:
        state = self.state
        if self.name is not None and state is not self._published:
            metrics.set_breaker_state(self.name, _GAUGE_STATES[state])
        self._published = state
