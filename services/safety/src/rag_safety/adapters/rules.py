"""Regular-expression rules: deterministic, explainable, and only as good as their patterns."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rag_common.contracts import SafetyFinding

FindingKind = Literal["pii", "prompt_injection", "moderation"]


@dataclass(frozen=True)
class Rule:
    label: str
    pattern: re.Pattern[str]


def rule(label: str, pattern: str) -> Rule:
    """A case-insensitive rule in which each space of `pattern` matches any run of whitespace."""
    return Rule(label=label, pattern=re.compile(pattern.replace(" ", r"\s+"), re.IGNORECASE))


class RegexRuleDetector:
    """Reports every match of every rule as a finding of one kind, with score 1.0."""

    def __init__(self, *, kind: FindingKind, rules: list[Rule]) -> None:
        self.kind: FindingKind = kind
        self.rules = rules

    def detect(self, text: str) -> list[SafetyFinding]:
        return [
            SafetyFinding(kind=self.kind, label=f"rule:{r.label}", score=1.0, start=m.start(), end=m.end())
            for r in self.rules
            for m in r.pattern.finditer(text)
        ]
