from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rag_common.contracts import SafetyFinding


class PiiDetector(Protocol):
    """Finds personal data and masks it; blocking CPU work, call it off the event loop."""

    def analyze(self, text: str) -> list[SafetyFinding]: ...

    def redact(self, text: str, findings: list[SafetyFinding]) -> str: ...


class InjectionClassifier(Protocol):
    """A model that scores text for prompt injection; blocking, call it off the event loop."""

    name: str

    def score(self, text: str) -> float:
        """The probability, 0 to 1, that the text tries to override the assistant's instructions."""
        ...

    def score_batch(self, texts: list[str]) -> list[float]:
        """`score` of each text, in as few model passes as the adapter can manage."""
        ...


class LeakDetector(Protocol):
    """Finds spans of an answer that quote the system prompt or known instruction phrases."""

    def detect(self, text: str, *, system_prompt: str | None, min_words: int) -> list[SafetyFinding]: ...


class Embedder(Protocol):
    """Sentence embeddings, L2-normalised; blocking, call it off the event loop."""

    def embed(self, texts: list[str]) -> list[list[float]]: ...


class SpanDetector(Protocol):
    """Reports each match in the text as a finding with offsets (today: regex rule sets)."""

    def detect(self, text: str) -> list[SafetyFinding]: ...


@dataclass(frozen=True)
class Detectors:
    """Every detector the service runs, built once in the lifespan."""

    pii: PiiDetector
    injection_rules: SpanDetector
    injection_classifier: InjectionClassifier | None
    moderation: SpanDetector
    leak: LeakDetector | None = None
    embedder: Embedder | None = None
