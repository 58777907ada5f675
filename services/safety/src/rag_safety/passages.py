"""Indirect prompt injection in retrieved passages: one verdict per passage, before prompting.

All passages go through the classifier together (`score_batch`: one batched pass over every
window), the regex rules run per passage. A passage with a finding gets the policy's injection
action; the caller drops the `blocked` ones. PII in passages is not this endpoint's concern.
"""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool

from rag_common.contracts import SafetyFinding
from rag_common.errors import PayloadTooLarge

from .policy import Policy
from .ports import Detectors
from .schemas import PassagesRequest, PassagesVerdict, PassageVerdict
from .service import CheckResult, classifier_findings, ensure_within_limit


async def check_passages(
    request: PassagesRequest, *, detectors: Detectors, policy: Policy, max_items: int
) -> PassagesVerdict:
    if len(request.passages) > max_items:
        raise PayloadTooLarge(f"{len(request.passages)} passages; the check accepts at most {max_items}.")
    for passage in request.passages:
        ensure_within_limit(passage, policy)
    classifier = detectors.injection_classifier
    rules, scores = await asyncio.gather(
        run_in_threadpool(lambda: [detectors.injection_rules.detect(p) for p in request.passages]),
        run_in_threadpool(classifier.score_batch, request.passages) if classifier else _no_scores(),
    )
    results = []
    for index, passage in enumerate(request.passages):
        findings: list[SafetyFinding] = list(rules[index])
        score = round(scores[index], 4) if scores is not None else None
        if classifier is not None and score is not None:
            findings += classifier_findings(classifier, score, policy.injection_threshold)
        results.append(_passage_verdict(index, passage, findings, score, policy))
    return PassagesVerdict(
        policy=policy.name, results=results, blocked=[r.index for r in results if r.verdict == "block"]
    )


async def _no_scores() -> None:
    return None


def _passage_verdict(
    index: int, passage: str, findings: list[SafetyFinding], score: float | None, policy: Policy
) -> PassageVerdict:
    if not passage.strip() or not findings:
        return PassageVerdict(index=index, verdict="allow", score=score)
    result = CheckResult("prompt injection", policy.injection_action, findings)
    return PassageVerdict(
        index=index,
        verdict="block" if policy.injection_action == "block" else "allow",
        score=score,
        findings=findings,
        reasons=[result.reason],
    )
