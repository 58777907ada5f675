"""Splits documents into overlapping chunks that remember where they came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    text: str
    start: int
    end: int


def _cut_point(text: str, start: int, limit: int) -> int:
    """The last whitespace before `limit`, so words stay whole; `limit` when there is none."""
    if limit >= len(text):
        return len(text)
    cut = text.rfind(" ", start + 1, limit)
    newline = text.rfind("\n", start + 1, limit)
    cut = max(cut, newline)
    return cut if cut > start else limit


def chunk_text(text: str, *, size: int, overlap: int) -> list[Chunk]:
    """Chunks of at most `size` characters; `text[chunk.start:chunk.end]` gives the chunk back."""
    chunks: list[Chunk] = []
    start = 0
    while start < len(text):
        while start < len(text) and text[start].isspace():
            start += 1
        if start >= len(text):
            break
        end = _cut_point(text, start, start + size)
        piece = text[start:end].rstrip()
        chunks.append(Chunk(index=len(chunks), text=piece, start=start, end=start + len(piece)))
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
        if overlap and start > 0 and not text[start - 1].isspace():
            next_space = text.find(" ", start, end)
            start = next_space + 1 if next_space != -1 else start
    return chunks
