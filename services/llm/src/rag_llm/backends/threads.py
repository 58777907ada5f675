"""Runs a blocking token producer in a worker thread and hands its events to the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable
from typing import Generic, TypeVar

import anyio

T = TypeVar("T")

Emit = Callable[[T], None]
Producer = Callable[[Emit[T], threading.Event], None]
"""Blocking: calls `emit` per event and returns early once the `threading.Event` is set."""


class _Finished:
    """Queued after the worker thread has returned or raised."""


class _Handoff(Generic[T]):
    """An unbounded loop-side queue the worker fills with `call_soon_threadsafe`.

    Unbounded is fine: the producer makes a few hundred small strings a second at most, and it
    stops at the next token once the consumer goes away.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.queue: asyncio.Queue[T | _Finished] = asyncio.Queue()

    def emit(self, item: T) -> None:
        self._loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def finish(self, _: object) -> None:
        self.queue.put_nowait(_Finished())


async def iterate_in_thread(produce: Producer[T]) -> AsyncGenerator[T, None]:
    """Yield what `produce` emits, in order, without blocking the event loop.

    Errors raised by the producer are raised here. Closing this iterator early (a client went
    away) sets the stop flag and waits, shielded from cancellation, for the thread to return:
    callers hold a lock around models that are not thread-safe, and must not release it while
    the thread still runs.
    """
    loop = asyncio.get_running_loop()
    handoff: _Handoff[T] = _Handoff(loop)
    stop = threading.Event()
    worker = loop.run_in_executor(None, produce, handoff.emit, stop)
    worker.add_done_callback(handoff.finish)
    try:
        while not isinstance(item := await handoff.queue.get(), _Finished):
            yield item
        worker.result()
    finally:
        stop.set()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([worker])
        if not worker.cancelled():
            worker.exception()  # retrieved: after an early close nobody wants the producer's error


async def iterate_locked(lock: asyncio.Lock, produce: Producer[T]) -> AsyncGenerator[T, None]:
    """`iterate_in_thread` holding `lock` for the whole stream, for models that are not thread-safe;
    the worker is stopped and joined before the lock is released, even when the consumer goes away."""
    async with lock:
        events = iterate_in_thread(produce)
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()
