"""The safety service as the workflow uses it: the key's or tenant's policy, fail closed (or open),
reversible redaction's mapping kept for the asker only, and the checks that only inform (grounding)
never failing a request."""

from __future__ import annotations

import logging
import re

from rag_common import telemetry
from rag_common.contracts import Citation, Grounding, SafetyVerdict
from rag_common.errors import SafetyBlocked, UpstreamUnavailable

from . import deanonymise, safety_policy, tenancy
from .pipeline import Pipeline

logger = logging.getLogger(__name__)
tracer = telemetry.tracer(__name__)
UNCHECKED = "unchecked"


def _open_on(pipeline: Pipeline, exc: UpstreamUnavailable) -> bool:
    """True when the policy lets the request go on without the safety service."""
    if exc.service != "safety":
        return False
    policy, tenant = safety_policy.current(), tenancy.current()
    if not safety_policy.fails_open(pipeline.settings, policy=policy, tenant=tenant):
        return False
    logger.warning("safety service unavailable, continuing unchecked (fail-open): %s", exc.detail)
    return True


async def check(pipeline: Pipeline, text: str, direction: str) -> SafetyVerdict:
    """A blocked question raises (400); a blocked answer comes back for the caller to withhold.

    A question's mapping (reversible redaction) goes to the request's `deanonymise` scope, never
    further down the workflow.
    """
    if not pipeline.settings.safety_enabled:
        return SafetyVerdict(verdict="allow", text=text)
    try:
        with tracer.start_as_current_span(f"safety.{direction}"):
            verdict = await pipeline.safety.check(text, direction, tenancy.current())
    except UpstreamUnavailable as exc:
        if not _open_on(pipeline, exc):
            raise
        return SafetyVerdict(verdict=UNCHECKED, text=text, reasons=["the safety service was unavailable"])
    if verdict.verdict == "block" and direction == "input":
        raise SafetyBlocked(verdict.reasons, "question")
    if verdict.mapping is None:
        return verdict
    if direction == "input" and (pseudonyms := deanonymise.current()) is not None:
        pseudonyms.keep(verdict.mapping)
    return verdict.model_copy(update={"mapping": None})


async def recall_pseudonyms(pipeline: Pipeline, question: str, answer: str) -> None:
    """A cached answer skipped the input check; its placeholders need the question's numbering again
    (the same question numbers its values the same way)."""
    pseudonyms = deanonymise.current()
    if pseudonyms is not None and pseudonyms.wanted_for(answer):
        await check(pipeline, question, "input")


async def screen(pipeline: Pipeline, citations: list[Citation]) -> tuple[list[Citation], int]:
    """Drops passages carrying an injection (an attack hidden in an ingested document); renumbers the rest."""
    settings = pipeline.settings
    if not (settings.safety_enabled and settings.screen_passages and citations):
        return citations, 0
    try:
        with tracer.start_as_current_span("safety.passages"):
            blocked = set(await pipeline.safety.screen([c.text for c in citations], tenancy.current()))
    except UpstreamUnavailable as exc:
        if not _open_on(pipeline, exc):
            raise
        return citations, 0
    kept = [c for position, c in enumerate(citations) if position not in blocked]
    renumbered = [c.model_copy(update={"index": i}) for i, c in enumerate(kept, start=1)]
    return renumbered, len(citations) - len(kept)


async def ground(pipeline: Pipeline, answer: str, citations: list[Citation]) -> Grounding | None:
    settings = pipeline.settings
    if not (settings.safety_enabled and settings.grounding_enabled and citations):
        return None
    try:
        with tracer.start_as_current_span("safety.grounding"):
            return await pipeline.safety.grounding(answer, [c.text for c in citations])
    except UpstreamUnavailable as exc:
        logger.warning("no grounding score: %s", exc.detail)
        return None


_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")
# A stream with any unchecked window (safety down, failing open) reports `unchecked`, not `allow`.
_SEVERITY = {"allow": 0, UNCHECKED: 1, "redact": 2, "block": 3}


class OutputBlocked(Exception):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class StreamGuard:
    """Holds streamed text back until a sentence ends (or `max_chars` gather), checks that window
    with the output policy, then releases it, redacted if need be. A blocked window ends the stream:
    nothing of it, or after it, reaches the client."""

    def __init__(self, pipeline: Pipeline, *, max_chars: int) -> None:
        settings = pipeline.settings
        self._pipeline = pipeline
        self._max_chars = max_chars
        self._holding = settings.safety_enabled and settings.stream_guard
        self._pending = ""
        self.verdict = "allow"
        self.released: list[str] = []

    async def feed(self, delta: str) -> str:
        """The text that may go out now (often empty while a sentence is still being written)."""
        if not self._holding:
            self.released.append(delta)
            return delta
        self._pending += delta
        cut = self._cut()
        if cut == 0:
            return ""
        window, self._pending = self._pending[:cut], self._pending[cut:]
        return await self._check(window)

    async def flush(self) -> str:
        """The held-back rest; without holding, the whole answer is checked once, after it went out."""
        if not self._holding:
            text = "".join(self.released)
            verdict = await check(self._pipeline, text, "output") if text else None
            if verdict is not None:
                self.verdict = verdict.verdict
                if verdict.verdict == "block":
                    raise OutputBlocked(verdict.reasons or ["the output policy"])
            return ""
        window, self._pending = self._pending, ""
        return await self._check(window) if window else ""

    def _cut(self) -> int:
        ends = [match.end() for match in _SENTENCE_END.finditer(self._pending)]
        if ends:
            return ends[-1]
        return len(self._pending) if len(self._pending) >= self._max_chars else 0

    async def _check(self, window: str) -> str:
        verdict = await check(self._pipeline, window, "output")
        if _SEVERITY[verdict.verdict] > _SEVERITY[self.verdict]:
            self.verdict = verdict.verdict
        if verdict.verdict == "block":
            raise OutputBlocked(verdict.reasons or ["the output policy"])
        self.released.append(verdict.text)
        return verdict.text
