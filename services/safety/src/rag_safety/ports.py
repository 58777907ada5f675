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
