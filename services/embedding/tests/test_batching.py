from __future__ import annotations

import asyncio
import threading

import pytest

from rag_embedding.batching import BATCH_TEXTS, DynamicBatcher
from rag_embedding.pieces import split_evenly


class LengthEmbedder:
    """A real, tiny embedder: the vector of a text is [its length]; records each model call."""

    model_name = "length"
    dimension = 1

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_on = fail_on
        self.release = threading.Event()
        self.release.set()

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.release.wait(timeout=5)
        self.calls.append(texts)
        if self.fail_on in texts:
            raise RuntimeError("model failure")
        return [[float(len(t))] for t in texts]

    def token_counts(self, texts: list[str]) -> list[int]:
        return [len(t.split()) for t in texts]


def observed() -> tuple[float, float]:
    """The batch-size histogram's (count, sum) so far."""
    samples = {s.name: s.value for s in BATCH_TEXTS.collect()[0].samples}
    return samples["rag_embedding_batch_texts_count"], samples["rag_embedding_batch_texts_sum"]


async def test_concurrent_requests_share_model_calls_and_get_their_own_vectors() -> None:
    embedder = LengthEmbedder()
    batcher = DynamicBatcher(embedder, max_batch=64, max_wait_s=0.05)
    batcher.start()
    texts = [["a" * n] for n in range(1, 21)]
    count_before, sum_before = observed()
    results = await asyncio.gather(*(batcher.embed(t) for t in texts))
    await batcher.aclose()
    count_after, sum_after = observed()
    assert (count_after - count_before, sum_after - sum_before) == (len(embedder.calls), len(texts))
    assert [r.vectors for r in results] == [[[float(n)]] for n in range(1, 21)]
    assert all(r.tokens == 1 for r in results)
    assert len(embedder.calls) < len(texts)
    assert sum(len(call) for call in embedder.calls) == len(texts)


async def test_batches_never_exceed_the_maximum_size_by_more_than_one_request() -> None:
    embedder = LengthEmbedder()
    embedder.release.clear()
    batcher = DynamicBatcher(embedder, max_batch=4, max_wait_s=0.01)
    batcher.start()
    pending = [asyncio.ensure_future(batcher.embed(["x", "y"])) for _ in range(6)]
    await asyncio.sleep(0.05)
    embedder.release.set()
    await asyncio.gather(*pending)
    await batcher.aclose()
    assert all(len(call) <= 4 for call in embedder.calls)


class OverlappingEmbedder(LengthEmbedder):
    """Each model call waits for a second one to run beside it: one call at a time times out."""

    def __init__(self) -> None:
        super().__init__()
        self.both_running = threading.Barrier(2, timeout=5)

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.both_running.wait()
        return super().embed(texts)


async def test_two_workers_encode_two_batches_at_once_each_with_its_share_of_the_requests() -> None:
    embedder = OverlappingEmbedder()
    batcher = DynamicBatcher(embedder, max_batch=64, max_wait_s=0.05, workers=2)
    batcher.start()
    texts = [["a" * n] for n in range(1, 9)]
    results = await asyncio.gather(*(batcher.embed(t) for t in texts))
    await batcher.aclose()
    assert [r.vectors for r in results] == [[[float(n)]] for n in range(1, 9)]
    assert sorted(len(call) for call in embedder.calls) == [4, 4]


async def test_a_request_of_several_texts_is_split_between_the_workers() -> None:
    embedder = OverlappingEmbedder()
    batcher = DynamicBatcher(embedder, max_batch=64, max_wait_s=0.05, workers=2)
    batcher.start()
    texts = ["a" * n for n in range(1, 8)]
    result = await batcher.embed(texts)
    await batcher.aclose()
    assert result.vectors == [[float(n)] for n in range(1, 8)]
    assert result.tokens == 7
    assert sorted(embedder.calls) == [["a" * n for n in range(1, 5)], ["a" * n for n in range(5, 8)]]


async def test_a_request_is_split_by_length_and_answered_in_its_own_order() -> None:
    embedder = OverlappingEmbedder()
    batcher = DynamicBatcher(embedder, max_batch=64, max_wait_s=0.05, workers=2)
    batcher.start()
    lengths = [6, 1, 5, 2, 4, 3]
    result = await batcher.embed(["a" * n for n in lengths])
    await batcher.aclose()
    assert result.vectors == [[float(n)] for n in lengths]
    assert sorted(embedder.calls) == [["a", "aa", "aaa"], ["aaaa", "aaaaa", "aaaaaa"]]


async def test_one_worker_takes_every_waiting_request_up_to_the_maximum() -> None:
    embedder = LengthEmbedder()
    batcher = DynamicBatcher(embedder, max_batch=64, max_wait_s=0.05, workers=1)
    batcher.start()
    await asyncio.gather(*(batcher.embed([str(n)]) for n in range(8)))
    await batcher.aclose()
    assert [len(call) for call in embedder.calls] == [8]


async def test_a_model_failure_reaches_every_request_of_the_batch_and_the_worker_survives() -> None:
    embedder = LengthEmbedder(fail_on="boom")
    batcher = DynamicBatcher(embedder, max_batch=64, max_wait_s=0.05)
    batcher.start()
    outcomes = await asyncio.gather(batcher.embed(["boom"]), batcher.embed(["fine"]), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert (await batcher.embed(["again"])).vectors == [[5.0]]
    await batcher.aclose()


async def test_close_cancels_requests_still_waiting() -> None:
    embedder = LengthEmbedder()
    embedder.release.clear()
    batcher = DynamicBatcher(embedder, max_batch=1, max_wait_s=0)
    batcher.start()
    first = asyncio.ensure_future(batcher.embed(["a"]))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(batcher.embed(["b"]))
    await asyncio.sleep(0.01)
    embedder.release.set()
    await batcher.aclose()
    with pytest.raises(asyncio.CancelledError):
        await second
    first.cancel()


@pytest.mark.parametrize(
    ("items", "parts", "pieces"),
    [
        (list(range(7)), 2, [[0, 1, 2, 3], [4, 5, 6]]),
        (list(range(3)), 8, [[0], [1], [2]]),
        (list(range(5)), 1, [[0, 1, 2, 3, 4]]),
        ([], 4, []),
    ],
)
def test_work_is_split_into_at_most_the_given_pieces_in_order(
    items: list[int], parts: int, pieces: list[list[int]]
) -> None:
    assert split_evenly(items, parts) == pieces
