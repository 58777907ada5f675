"""Prompt-injection detection: the NanoGuard classifier and a few regex rules for the classic phrasings.

NanoGuard (PyPI `metatronnanoguard`) is a 16.8M-parameter bidirectional transformer that ships its
weights inside the wheel, so it runs offline. Its tokenizer is a pickled tiktoken encoding loaded
with `pickle.load`: trust it as you trust the installed package's code.
"""

from __future__ import annotations

from typing import Any

from .injection_rules import InjectionRuleDetector


def injection_rules() -> InjectionRuleDetector:
    return InjectionRuleDetector()


class NanoGuardClassifier:
    """Scores a text as the highest injection probability over its 511-token windows.

    NanoGuard reads at most 512 tokens (one is its BOS token), so a longer text is cut into
    overlapping windows, each scanned alone (~100 ms each on 2 CPU cores; batching is slower per
    window). The model judges a window as a whole: an injection sentence inside a longer benign
    window is diluted, which is why the regex rules run alongside it.
    """

    name = "nanoguard"

    def __init__(self, *, device: str, batch_size: int = 16) -> None:
        from nanoguard.scanner import NanoGuard

        self._guard: Any = NanoGuard(device=device)
        self._batch_size = batch_size
        self._window = int(self._guard.config.sequence_len) - 1
        self._stride = self._window * 3 // 4

    def score(self, text: str) -> float:
        return max(float(self._guard.scan(window).injection_score) for window in self._windows(text))

    def score_batch(self, texts: list[str]) -> list[float]:
        """Every window of every text through the model in batches; each text gets its highest score."""
        windows = [(index, window) for index, text in enumerate(texts) for window in self._windows(text)]
        scores = [0.0] * len(texts)
        for at in range(0, len(windows), self._batch_size):
            chunk = windows[at : at + self._batch_size]
            results = self._guard.scan_batch([window for _, window in chunk])
            for (index, _), result in zip(chunk, results, strict=True):
                scores[index] = max(scores[index], float(result.injection_score))
        return scores

    def _windows(self, text: str) -> list[str]:
        encoding = self._guard.tokenizer.enc
        ids: list[int] = encoding.encode_ordinary(text)
        if len(ids) <= self._window:
            return [text]
        starts = range(0, len(ids) - self._window + self._stride, self._stride)
        return [encoding.decode(ids[start : start + self._window]) for start in starts]
