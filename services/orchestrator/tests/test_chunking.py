from __future__ import annotations

import itertools

import pytest

from rag_orchestrator.chunking import chunk_text

TEXT = (
    "Retrieval augmented generation grounds a language model in documents. "
    "The documents are split into chunks, embedded, and stored in a vector database.\n\n"
    "At question time the closest chunks are retrieved and placed in the prompt. " * 3
)


@pytest.mark.parametrize(("size", "overlap"), [(50, 0), (80, 20), (200, 50), (10_000, 100)])
def test_chunks_point_back_into_the_text_and_respect_the_size(size: int, overlap: int) -> None:
    chunks = chunk_text(TEXT, size=size, overlap=overlap)
    assert chunks
    for i, chunk in enumerate(chunks):
        assert chunk.index == i
        assert TEXT[chunk.start : chunk.end] == chunk.text
        assert 0 < len(chunk.text) <= size
    assert chunks[-1].end == len(TEXT.rstrip())


def test_neighbouring_chunks_overlap_and_cover_every_word() -> None:
    chunks = chunk_text(TEXT, size=80, overlap=20)
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end, "consecutive chunks share some text"
        assert after.start > before.start
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert all(i in covered for i, ch in enumerate(TEXT.rstrip()) if not ch.isspace())


def test_words_are_not_cut_when_a_space_is_available() -> None:
    for chunk in chunk_text(TEXT, size=60, overlap=10):
        assert TEXT[chunk.end : chunk.end + 1] in ("", " ", "\n")


def test_a_word_longer_than_the_chunk_is_split_hard() -> None:
    chunks = chunk_text("x" * 25, size=10, overlap=0)
    assert [len(c.text) for c in chunks] == [10, 10, 5]
