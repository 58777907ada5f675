"""Tiny real adapters implementing the ports, for tests of the service logic without models."""

from __future__ import annotations

import re
from typing import Literal

from rag_common.contracts import SafetyFinding

EMAIL = re.compile(r"\S+@\S+\.\w+")


class EmailOnlyPii:
    def analyze(self, text: str) -> list[SafetyFinding]:
        return [
            SafetyFinding(kind="pii", label="EMAIL_ADDRESS", score=1.0, start=m.start(), end=m.end())
            for m in EMAIL.finditer(text)
        ]

    def redact(self, text: str, findings: list[SafetyFinding]) -> str:
        for f in sorted(findings, key=lambda f: f.start or 0, reverse=True):
            text = f"{text[: f.start]}<{f.label}>{text[f.end :]}"
        return text


class KeywordRule:
    def __init__(self, kind: Literal["prompt_injection", "moderation"], word: str) -> None:
        self.kind: Literal["prompt_injection", "moderation"] = kind
        self.word = word

    def detect(self, text: str) -> list[SafetyFinding]:
        at = text.lower().find(self.word)
        if at < 0:
            return []
        return [
            SafetyFinding(
                kind=self.kind, label=f"rule:{self.word}", score=1.0, start=at, end=at + len(self.word)
            )
        ]


class ScoreByWord:
    """Scores 0.99 when the text contains `word`, else 0.01."""

    name = "fake"

    def __init__(self, word: str) -> None:
        self.word = word

    def score(self, text: str) -> float:
        return 0.99 if self.word in text.lower() else 0.01

    def score_batch(self, texts: list[str]) -> list[float]:
        return [self.score(text) for text in texts]


class BagOfWordsEmbedder:
    """Embeds a text as its normalised word counts over a fixed vocabulary of the words it has seen."""

    def __init__(self) -> None:
        self.vocabulary: dict[str, int] = {}

    def embed(self, texts: list[str]) -> list[list[float]]:
        tokenised = [re.findall(r"\w+", text.lower()) for text in texts]
        for words in tokenised:
            for word in words:
                self.vocabulary.setdefault(word, len(self.vocabulary))
        vectors = []
        for words in tokenised:
            vector = [0.0] * 512
            for word in words:
                vector[self.vocabulary[word] % 512] += 1.0
            norm = sum(x * x for x in vector) ** 0.5 or 1.0
            vectors.append([x / norm for x in vector])
        return vectors
