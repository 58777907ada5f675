"""Dynamic batching: concurrent requests merged into one model batch, each waiting a bounded time.

The requests queued and not yet taken into a batch are the `rag_queue_depth{queue="embedding"}` gauge;
the texts per model call, the `rag_embedding_batch_texts` histogram.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from rag_common.metrics import QUEUE_DEPTH, histogram

from .ports import Embedder

BATCH_TEXTS = histogram(
    "rag_embedding_batch_texts",
    "Texts encoded per model call by the dynamic batcher.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
)


@dataclass(frozen=True, slots=True)
class Embedded:
    vectors: list[list[float]]
    tokens: int


@dataclass
class _Pending:
    texts: list[str]
    future: asyncio.Future[Embedded] = field(repr=False)


class DynamicBatcher:
    """Queues requests; one worker encodes everything that arrived while the model was busy or
    within `max_wait_s` of the first waiting request, up to `max_batch` texts per model call."""

    def __init__(self, embedder: Embedder, *, max_batch: int, max_wait_s: float) -> None:
        self._embedder = embedder
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._depth = QUEUE_DEPTH.labels(queue="embedding")
        self._depth.set(0)
        self.batches = 0

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="embedding-batcher")

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        while not self._queue.empty():
            self._queue.get_nowait().future.cancel()
        self._depth.set(0)

    async def embed(self, texts: list[str]) -> Embedded:
        future: asyncio.Future[Embedded] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(texts, future))
        self._depth.set(self._queue.qsize())
        return await future

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            await self._encode(batch)

    async def _collect(self) -> list[_Pending]:
        batch = [await self._queue.get()]
        size = len(batch[0].texts)
        deadline = asyncio.get_running_loop().time() + self._max_wait_s
        while size < self._max_batch:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                item = (
                    self._queue.get_nowait()
                    if remaining <= 0
                    else await asyncio.wait_for(self._queue.get(), remaining)
                )
            except (asyncio.QueueEmpty, TimeoutError):
                break
            batch.append(item)
            size += len(item.texts)
        self._depth.set(self._queue.qsize())
        return batch

    async def _encode(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if not p.future.done()]
        texts = [text for pending in live for text in pending.texts]
        if not texts:
            return
        self.batches += 1
        BATCH_TEXTS.observe(len(texts))
        try:
            vectors, tokens = await run_in_threadpool(self._work, texts)
        except Exception as exc:  # handed to every waiting request: the worker itself must live on
            for pending in live:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        offset = 0
        for pending in live:
            end = offset + len(pending.texts)
            if not pending.future.done():
                pending.future.set_result(Embedded(vectors[offset:end], sum(tokens[offset:end])))
            offset = end

    def _work(self, texts: list[str]) -> tuple[list[list[float]], list[int]]:
        """One worker-thread hop per batch: encode, and count each text's tokens for `usage`."""
        return self._embedder.embed(texts), self._embedder.token_counts(texts)
