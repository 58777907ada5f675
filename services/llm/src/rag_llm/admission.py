"""A bounded wait queue in front of a local model, so overload is refused instead of piling up.

A local model generates one request at a time (its backend holds a lock); up to `max_waiting`
more may wait for it. Anything beyond that is refused at once with a 503 and `Retry-After`,
so a traffic spike costs clients a retry instead of growing memory and latency without bound.
The requests waiting (not the one generating) are the `rag_queue_depth{queue="llm:<model>"}` gauge.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rag_common.metrics import QUEUE_DEPTH

from .errors import QueueFull


class AdmissionGate:
    def __init__(self, *, model: str, max_waiting: int, concurrency: int = 1) -> None:
        self._model = model
        self._concurrency = concurrency
        self._capacity = concurrency + max_waiting
        self._admitted = 0
        self._depth = QUEUE_DEPTH.labels(queue=f"llm:{model}")
        self._depth.set(0)

    @property
    def admitted(self) -> int:
        """Requests generating or waiting for this model now."""
        return self._admitted

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a place (running or waiting) for the duration of one generation."""
        if self._admitted >= self._capacity:
            raise QueueFull(self._model)
        self._admitted += 1
        self._publish()
        try:
            yield
        finally:
            self._admitted -= 1
            self._publish()

    def _publish(self) -> None:
        self._depth.set(max(0, self._admitted - self._concurrency))
