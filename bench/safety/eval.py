"""Precision, recall and latency of the safety service's real detectors on `dataset.jsonl`.

Runs in-process with the service's own adapters and policy logic (no HTTP): `input` items go
through `/v1/check`'s service function, `passage` items through `/v1/check/passages`', PII is
measured with the Presidio adapter on every item. Items whose index is a multiple of 3 are the
held-out test split; rules and thresholds were tuned looking only at the others (`tune`).
Writes `RESULTS.md` beside this file.

    .venv/bin/python bench/safety/eval.py [--threshold 0.95] [--show-errors tune]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from rag_devstack.bench import Goal, record_goals
from rag_safety import service as safety_service
from rag_safety.main import load_detectors
from rag_safety.passages import check_passages
from rag_safety.policy import Policy
from rag_safety.ports import Detectors
from rag_safety.schemas import CheckRequest, PassagesRequest
from rag_safety.settings import Settings

HERE = Path(__file__).parent
STRUCTURED = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN"]
TYPES = [*STRUCTURED, "PERSON"]


@dataclass
class Outcome:
    index: int
    item: dict[str, object]
    injection: bool
    pii: set[str]
    check_ms: float
    pii_ms: float


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, expected: bool, got: bool, text: str) -> None:
        self.tp += expected and got
        self.fp += got and not expected
        self.fn += expected and not got
        if expected != got:
            self.errors.append(("FN " if expected else "FP ") + text)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def row(self, name: str) -> str:
        return f"| {name} | {self.tp + self.fn} | {self.precision:.3f} | {self.recall:.3f} | {self.fp} | {self.fn} |"


async def run_item(index: int, item: dict[str, object], detectors: Detectors, policy: Policy) -> Outcome:
    text = str(item["text"])
    started = time.perf_counter()
    if item["direction"] == "passage":
        verdict = await check_passages(
            PassagesRequest(passages=[text]), detectors=detectors, policy=policy, max_items=64
        )
        injection = bool(verdict.blocked)
    else:
        direction = "input" if item["direction"] == "input" else "output"
        result = await safety_service.check(
            CheckRequest(text=text, direction=direction), detectors=detectors, policy=policy
        )
        injection = any(f.kind == "prompt_injection" for f in result.findings)
    check_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    pii = {f.label for f in detectors.pii.analyze(text) if f.score >= policy.pii_threshold}
    pii_ms = (time.perf_counter() - started) * 1000
    return Outcome(index, item, injection, pii, check_ms, pii_ms)


def table(outcomes: list[Outcome]) -> tuple[list[str], dict[str, Counts]]:
    counts: dict[str, Counts] = {name: Counts() for name in ["injection", *TYPES, "PII structured (all)"]}
    for o in outcomes:
        text = str(o.item["text"])
        if o.item["direction"] != "output":
            counts["injection"].add(bool(o.item["injection"]), o.injection, f"[{o.item['category']}] {text}")
        expected = {str(t) for t in o.item["pii"]}  # type: ignore[attr-defined]
        for entity in TYPES:
            counts[entity].add(entity in expected, entity in o.pii, f"{sorted(o.pii)} {text}")
        for entity in STRUCTURED:
            counts["PII structured (all)"].add(entity in expected, entity in o.pii, text)
    header = ["| check | positives | precision | recall | FP | FN |", "|---|---|---|---|---|---|"]
    return header + [c.row(name) for name, c in counts.items()], counts


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(outcomes: list[Outcome]) -> list[str]:
    rows = ["| path | items | p50 ms | p99 ms |", "|---|---|---|---|"]
    for direction in ["input", "passage", "output"]:
        ms = [o.check_ms for o in outcomes if o.item["direction"] == direction]
        rows.append(
            f"| /v1/check {direction} (all checks)" if direction != "passage" else "| passages (1 per call)"
        )
        rows[-1] += f" | {len(ms)} | {statistics.median(ms):.1f} | {percentile(ms, 0.99):.1f} |"
    pii = [o.pii_ms for o in outcomes]
    rows.append(
        f"| Presidio analyze alone | {len(pii)} | {statistics.median(pii):.1f} | {percentile(pii, 0.99):.1f} |"
    )
    return rows


async def batched_passages(items: list[dict[str, object]], detectors: Detectors, policy: Policy) -> str:
    """One /v1/check/passages call with 8 passages (a typical top-k), repeated over the passage items."""
    passages = [str(item["text"]) for item in items if item["direction"] == "passage"]
    timings = []
    for at in range(0, len(passages) - 7, 4):
        started = time.perf_counter()
        await check_passages(
            PassagesRequest(passages=passages[at : at + 8]), detectors=detectors, policy=policy, max_items=64
        )
        timings.append((time.perf_counter() - started) * 1000)
    return (
        f"| passages, 8 per call | {len(timings)} calls | {statistics.median(timings):.1f} |"
        f" {max(timings):.1f} (max) |"
    )


# Measured before any tuning (original rules, classifier threshold 0.95), kept for comparison.
BASELINE = """## Before tuning (original five rules, threshold 0.95)

| split | injection precision | injection recall | PII structured precision | PII structured recall |
|---|---|---|---|---|
| tune | 0.831 | 0.844 | 0.955 | 0.977 |
| test | 0.839 | 0.788 | 1.000 | 1.000 |
| all | 0.833 | 0.825 | 0.970 | 0.985 |
"""


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threshold", type=float, default=None, help="Classifier threshold override.")
    parser.add_argument("--show-errors", choices=["tune", "test", "all"], default=None)
    args = parser.parse_args()
    settings = Settings()
    detectors = await load_detectors(settings.model_copy(update={"grounding_enabled": False}))
    policy = Policy.from_settings(settings)
    if args.threshold is not None:
        policy = replace(policy, injection_threshold=args.threshold)
    items = [json.loads(line) for line in (HERE / "dataset.jsonl").read_text().splitlines() if line.strip()]
    for index, item in enumerate(items[:3]):  # warm-up
        await run_item(index, item, detectors, policy)
    outcomes = [await run_item(i, item, detectors, policy) for i, item in enumerate(items)]
    splits = {
        "tune": [o for o in outcomes if o.index % 3],
        "test": [o for o in outcomes if o.index % 3 == 0],
        "all": outcomes,
    }
    lines = [
        "# Safety evaluation",
        "",
        f"`bench/safety/eval.py` on `dataset.jsonl` ({len(items)} hand-written items; test = every 3rd item,"
        f" held out; tune = the rest). Classifier threshold {policy.injection_threshold}, Presidio score"
        f" threshold {policy.pii_threshold}. Injection counts `input` and `passage` items; PII counts"
        " every item (per item: was the entity type found).",
        "",
    ]
    for name, split in splits.items():
        rows, counts = table(split)
        lines += [f"## {name} split ({len(split)} items)", "", *rows, ""]
        if args.show_errors == name:
            for check, c in counts.items():
                for error in c.errors:
                    print(f"{check}: {error}")
    load = os.getloadavg()[0]
    title = f"## Latency (all items, sequential, this machine; 1-min load average {load:.1f} at the end)"
    lines += [title, "", *latency(outcomes)]
    lines += [await batched_passages(items, detectors, policy), "", BASELINE]
    report = "\n".join(lines)
    (HERE / "RESULTS.md").write_text(report)
    print(report)
    record_goals(__file__, goals(table(splits["test"])[1]))


def goals(counts: dict[str, Counts]) -> list[Goal]:
    """The issue's goals, on the held-out test split."""
    injection, pii = counts["injection"], counts["PII structured (all)"]
    return [
        Goal(
            "injection recall >= 0.9 at precision >= 0.9 (test split)",
            f"recall {injection.recall:.3f}, precision {injection.precision:.3f}",
            injection.recall >= 0.9 and injection.precision >= 0.9,
        ),
        Goal(
            "PII recall >= 0.95 on structured types (test split)",
            f"recall {pii.recall:.3f}",
            pii.recall >= 0.95,
        ),
    ]


if __name__ == "__main__":
    asyncio.run(main())
