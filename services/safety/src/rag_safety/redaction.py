"""Reversible redaction: each distinct PII value becomes a numbered placeholder, `<EMAIL_ADDRESS_1>`.

The same value gets the same placeholder everywhere in the text, so an answer written from the
redacted question can be de-anonymised for its own user with the mapping (`restore`).
"""

from __future__ import annotations

from rag_common.contracts import SafetyFinding


def _spans(findings: list[SafetyFinding]) -> list[tuple[int, int, str]]:
    """Non-overlapping spans, left to right; of overlapping spans the longer (then earlier) wins."""
    located = [(f.start, f.end, f.label) for f in findings if f.start is not None and f.end is not None]
    located.sort(key=lambda span: (span[0], -(span[1] - span[0])))
    kept: list[tuple[int, int, str]] = []
    for start, end, label in located:
        if kept and start < kept[-1][1]:
            if end - start > kept[-1][1] - kept[-1][0]:
                kept[-1] = (start, end, label)
            continue
        kept.append((start, end, label))
    return kept


def pseudonymise(text: str, findings: list[SafetyFinding]) -> tuple[str, dict[str, str]]:
    """The text with numbered placeholders, and placeholder -> original value."""
    numbers: dict[tuple[str, str], str] = {}
    counts: dict[str, int] = {}
    pieces: list[str] = []
    at = 0
    for start, end, label in _spans(findings):
        value = text[start:end]
        if (label, value) not in numbers:
            counts[label] = counts.get(label, 0) + 1
            numbers[(label, value)] = f"<{label}_{counts[label]}>"
        pieces += [text[at:start], numbers[(label, value)]]
        at = end
    pieces.append(text[at:])
    return "".join(pieces), {placeholder: value for (_, value), placeholder in numbers.items()}


def restore(text: str, mapping: dict[str, str]) -> str:
    """Puts the original values back (what the orchestrator does for the answer's own user)."""
    for placeholder, value in mapping.items():
        text = text.replace(placeholder, value)
    return text
