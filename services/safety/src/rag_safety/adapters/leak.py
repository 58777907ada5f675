"""System-prompt leak detection: long verbatim word runs shared with the prompt, and known phrases.

Words are compared lower-cased and without punctuation, so re-spacing, re-casing or quoting the
prompt does not hide a copy. A run of at least `min_words` consecutive words of the system prompt
inside the answer is a leak; so is any phrase of `phrases` (the platform's own instruction lines).
"""

from __future__ import annotations

import re

from rag_common.contracts import SafetyFinding

from .rules import rule

_WORD = re.compile(r"\w+")


def _words(text: str) -> list[tuple[str, int, int]]:
    return [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(text)]


class VerbatimLeakDetector:
    def __init__(self, *, default_system_prompt: str, phrases: list[str]) -> None:
        self._default_prompt = default_system_prompt
        self._phrases = [rule(f"phrase_{i}", re.escape(p).replace(r"\ ", " ")) for i, p in enumerate(phrases)]

    def detect(self, text: str, *, system_prompt: str | None, min_words: int) -> list[SafetyFinding]:
        prompt = system_prompt if system_prompt is not None else self._default_prompt
        findings = [
            SafetyFinding(
                kind="moderation", label="rule:instruction_phrase", score=1.0, start=m.start(), end=m.end()
            )
            for phrase in self._phrases
            for m in phrase.pattern.finditer(text)
        ]
        return findings + self._overlaps(text, prompt, min_words)

    @staticmethod
    def _overlaps(text: str, prompt: str, min_words: int) -> list[SafetyFinding]:
        """Merged spans of the answer covered by any `min_words`-gram of the prompt."""
        prompt_words = [w for w, _, _ in _words(prompt)]
        if len(prompt_words) < min_words:
            return []
        grams = {tuple(prompt_words[i : i + min_words]) for i in range(len(prompt_words) - min_words + 1)}
        words = _words(text)
        spans: list[list[int]] = []
        for i in range(len(words) - min_words + 1):
            if tuple(w for w, _, _ in words[i : i + min_words]) not in grams:
                continue
            start, end = words[i][1], words[i + min_words - 1][2]
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        covered = sum(len(_WORD.findall(text[s:e])) for s, e in spans)
        score = round(min(1.0, covered / len(prompt_words)), 4)
        return [
            SafetyFinding(kind="moderation", label="rule:system_prompt_leak", score=score, start=s, end=e)
            for s, e in spans
        ]
