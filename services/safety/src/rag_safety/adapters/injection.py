"""Prompt-injection detection: the NanoGuard classifier and a few regex rules for the classic phrasings.

NanoGuard (PyPI `metatronnanoguard`) is a 16.8M-parameter bidirectional transformer that ships its
weights inside the wheel, so it runs offline. Its tokenizer is a pickled tiktoken encoding loaded
with `pickle.load`: trust it as you trust the installed package's code.
"""

from __future__ import annotations

from typing import Any

from .rules import RegexRuleDetector, rule

INJECTION_RULES = [
    rule(
        "ignore_previous_instructions",
        r"\b(?:ignore|disregard|forget|override) (?:all |any )?(?:of )?(?:the |your |my |these )?"
        r"(?:previous|prior|above|earlier|preceding|original|system) "
        r"(?:instructions?|prompts?|rules|directions|directives|guidelines)\b",
    ),
    rule("you_are_now_dan", r"\byou are now (?:DAN|in developer mode|jailbroken|an? unrestricted)\b"),
    rule("do_anything_now", r"\bdo anything now\b"),
    rule(
        "reveal_system_prompt",
        r"\b(?:reveal|print|show|repeat|output|display|leak|tell me|give me) (?:me )?(?:your|the) "
        r"(?:full |entire |exact )?(?:system|hidden|initial|original|secret) (?:prompt|instructions|message)\b",
    ),
    rule("jailbreak_mode", r"\b(?:enable|enter|activate|switch to) (?:developer|god|jailbreak|DAN) mode\b"),
]


def injection_rules() -> RegexRuleDetector:
    return RegexRuleDetector(kind="prompt_injection", rules=INJECTION_RULES)


class NanoGuardClassifier:
    """Scores a text as the highest injection probability over its 511-token windows.

    NanoGuard reads at most 512 tokens (one is its BOS token), so a longer text is cut into
    overlapping windows, each scanned alone (~100 ms each on 2 CPU cores; batching is slower per
    window). The model judges a window as a whole: an injection sentence inside a longer benign
    window is diluted, which is why the regex rules run alongside it.
    """

    name = "nanoguard"

    def __init__(self, *, device: str) -> None:
        from nanoguard.scanner import NanoGuard

        self._guard: Any = NanoGuard(device=device)
        self._window = int(self._guard.config.sequence_len) - 1
        self._stride = self._window * 3 // 4

    def score(self, text: str) -> float:
        return max(float(self._guard.scan(window).injection_score) for window in self._windows(text))

    def _windows(self, text: str) -> list[str]:
        encoding = self._guard.tokenizer.enc
        ids: list[int] = encoding.encode_ordinary(text)
        if len(ids) <= self._window:
            return [text]
        starts = range(0, len(ids) - self._window + self._stride, self._stride)
        return [encoding.decode(ids[start : start + self._window]) for start in starts]
