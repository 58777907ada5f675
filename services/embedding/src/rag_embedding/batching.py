"""Dynamic batching: concurrent requests merged into one model batch, each waiting a bounded time.

Several model calls may run at once (`workers`), each on its own thread: on CPU one single-threaded
call per core beats one call spread over every core, since the calls never wait for each other at
the end of each operation, and one core lent to the event loop slows one call rather than all. Each
batch then takes at most its fair share of the texts in flight, so no worker idles while another
encodes everything; for the same reason a request of several texts is split into one piece per
worker.

The requests queued and not yet taken into a batch are the `rag_queue_depth{queue="embedding"}` gauge;
the texts per model call, the `rag_embedding_batch_texts` histogram.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from rag_common.metrics import QUEUE_DEPTH, histogram

from .pieces import split_evenly
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
    """Queues requests; each of `workers` workers encodes what arrived while the model was busy or
    within `max_wait_s` of the first waiting request, up to `max_batch` texts per model call and its
    share of the texts in flight."""

    def __init__(self, embedder: Embedder, *, max_batch: int, max_wait_s: float, workers: int = 1) -> None:
        self._embedder = embedder
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._worker_count = workers
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._texts_in_flight = 0
        self._depth = QUEUE_DEPTH.labels(queue="embedding")
        self._depth.set(0)
        self.batches = 0

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._run(), name=f"embedding-batcher-{n}") for n in range(self._worker_count)
        ]

    async def aclose(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        while not self._queue.empty():
            self._queue.get_nowait().future.cancel()
        self._depth.set(0)

    async def embed(self, texts: list[str]) -> Embedded:
        """A request of several texts is split by length, the longest texts in one piece, the shortest
        in another: a model call pads its texts to the longest, so mixed lengths waste its work."""
        by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        pieces = split_evenly(by_length, self._worker_count)
        if len(pieces) <= 1:
            return await self._embed_piece(texts)
        parts = await asyncio.gather(*(self._embed_piece([texts[i] for i in piece]) for piece in pieces))
        vectors: list[list[float]] = [[] for _ in texts]
        for piece, part in zip(pieces, parts, strict=True):
            for index, vector in zip(piece, part.vectors, strict=True):
                vectors[index] = vector
        return Embedded(vectors, sum(part.tokens for part in parts))

    async def _embed_piece(self, texts: list[str]) -> Embedded:
        future: asyncio.Future[Embedded] = asyncio.get_running_loop().create_future()
        self._texts_in_flight += len(texts)
        try:
            await self._queue.put(_Pending(texts, future))
            self._depth.set(self._queue.qsize())
            return await future
        finally:
            self._texts_in_flight -= len(texts)

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            await self._encode(batch)

    async def _collect(self) -> list[_Pending]:
        batch = [await self._queue.get()]
        size = len(batch[0].texts)
        limit = self._batch_limit()
        deadline = asyncio.get_running_loop().time() + self._max_wait_s
        while size < limit:
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

    def _batch_limit(self) -> int:
        if self._worker_count == 1:
            return self._max_batch
        fair_share = math.ceil(self._texts_in_flight / self._worker_count)
        return max(1, min(self._max_batch, fair_share))

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
