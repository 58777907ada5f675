"""Reading LLM token usage from an orchestrator answer: a JSON body, or an SSE stream passing through."""

from __future__ import annotations

import json

MAX_EVENT_BYTES = 1_048_576


def total_tokens(data: object) -> int | None:
    """`usage.total_tokens` (or prompt + completion) of a JSON object, if it has a usage."""
    if not isinstance(data, dict):
        return None
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return None
    total = usage.get("total_tokens")
    if isinstance(total, int) and total > 0:
        return total
    parts = [usage.get("prompt_tokens"), usage.get("completion_tokens")]
    return sum(p for p in parts if isinstance(p, int))


def from_json(body: bytes) -> int | None:
    try:
        return total_tokens(json.loads(body))
    except ValueError:
        return None


class StreamUsage:
    """Fed the raw bytes of an SSE stream as they pass; keeps the last usage any event carried.

    RAG streams carry it on `event: done`, OpenAI chunk streams on a final chunk.
    """

    def __init__(self) -> None:
        self.total: int | None = None
        self._pending = b""

    def feed(self, chunk: bytes) -> None:
        self._pending = (self._pending + chunk).replace(b"\r\n", b"\n")
        *events, self._pending = self._pending.split(b"\n\n")
        if len(self._pending) > MAX_EVENT_BYTES:
            self._pending = b""
        for event in events:
            self._read(event)

    def _read(self, event: bytes) -> None:
        data = b"\n".join(line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:"))
        if not data or data == b"[DONE]":
            return
        found = from_json(data)
        if found is not None:
            self.total = found
