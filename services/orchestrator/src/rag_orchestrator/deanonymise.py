"""Reversible redaction for the asker: their own values back in the answer written from placeholders.

Under a reversible safety policy the input check returns the question with numbered placeholders
(`<EMAIL_ADDRESS_1>`) and the mapping back to the values. Everything downstream (retrieval, the
prompt, the output check, the answer cache, conversation memory) sees placeholders only; the
mapping lives in this request's `Pseudonyms`, in memory, and is applied to the answer text on its
way out to the same caller. It is never stored, logged or put on a span.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, contextmanager
from contextvars import ContextVar

from rag_common.contracts import RagAnswer

PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")
# What the start of a placeholder looks like while the rest has not been streamed yet.
_OPEN_PLACEHOLDER = re.compile(r"<[A-Z0-9_]*\Z")
MAX_PLACEHOLDER_CHARS = 64

_current: ContextVar[Pseudonyms | None] = ContextVar("pseudonyms", default=None)


class Pseudonyms:
    """Placeholder -> original value for one request."""

    __slots__ = ("_mapping",)

    def __init__(self) -> None:
        self._mapping: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Pseudonyms({len(self._mapping)} values)"

    @property
    def empty(self) -> bool:
        return not self._mapping

    def keep(self, mapping: dict[str, str]) -> None:
        self._mapping.update(mapping)

    def restore(self, text: str) -> str:
        """Known placeholders become their values; any other `<...>` stays as written."""
        if not self._mapping:
            return text
        return PLACEHOLDER.sub(lambda m: self._mapping.get(m.group(), m.group()), text)

    def restore_answer(self, result: RagAnswer) -> RagAnswer:
        if self.empty:
            return result
        return result.model_copy(update={"answer": self.restore(result.answer)})

    def wanted_for(self, answer: str) -> bool:
        """True when an answer has placeholders this request has no values for (a cached answer)."""
        return self.empty and PLACEHOLDER.search(answer) is not None


@contextmanager
def request_scope() -> Iterator[Pseudonyms]:
    """Input checks made inside keep their mapping here (tasks started inside share the object)."""
    pseudonyms = Pseudonyms()
    token = _current.set(pseudonyms)
    try:
        yield pseudonyms
    finally:
        _current.reset(token)


def current() -> Pseudonyms | None:
    """This request's pseudonyms; None outside a scope (then a mapping is dropped, never restored)."""
    return _current.get()


class StreamRestorer:
    """Restores placeholders in streamed text; a `<...` at the end of a chunk is held back until it
    is complete or can no longer be a placeholder."""

    def __init__(self, pseudonyms: Pseudonyms) -> None:
        self._pseudonyms = pseudonyms
        self._held = ""

    def feed(self, delta: str) -> str:
        text = self._held + delta
        start = text.rfind("<")
        tail = text[start:] if start >= 0 else ""
        if tail and len(tail) < MAX_PLACEHOLDER_CHARS and _OPEN_PLACEHOLDER.match(tail):
            text, self._held = text[:start], tail
        else:
            self._held = ""
        return self._pseudonyms.restore(text)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return self._pseudonyms.restore(held)


async def restored_events(events: AsyncIterator[str], pseudonyms: Pseudonyms) -> AsyncIterator[str]:
    """The answer stream's `delta` events with placeholders restored; held text goes out before any
    other event (`done`, `error`). Without values to restore the events pass through untouched."""
    async with aclosing(events):  # type: ignore[type-var]  # an async generator has aclose
        restorer = StreamRestorer(pseudonyms)
        async for event in events:
            if pseudonyms.empty:
                yield event
                continue
            name, data = _parse(event)
            if name == "delta":
                if released := restorer.feed(data["content"]):
                    yield _event("delta", {"content": released})
                continue
            if rest := restorer.flush():
                yield _event("delta", {"content": rest})
            yield event
        if rest := restorer.flush():
            yield _event("delta", {"content": rest})


def _parse(event: str) -> tuple[str, dict[str, str]]:
    """Splits one `event: name\\ndata: json\\n\\n` block as `streaming.sse` writes it."""
    head, _, data = event.partition("\n")
    return head.removeprefix("event: "), json.loads(data.removeprefix("data: "))


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
