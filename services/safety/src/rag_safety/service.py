"""The safety policy: run the checks that apply to a direction, then combine their actions.

Each check that finds something contributes its configured action; the verdict is the strongest
of them, block > redact > allow. `flag` reports the finding (in `flagged` and `reasons`) without
changing the verdict. Only PII can redact; the text is redacted only when the verdict is redact (a
blocked text is returned unchanged and must not be used downstream).

Numbered placeholders (a reversible policy) apply to questions only: an answer's own PII gets
`<EMAIL_ADDRESS>`, so it can never reuse a question's `<EMAIL_ADDRESS_1>` and be "restored" to the
asker's value.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from starlette.concurrency import run_in_threadpool

from rag_common.contracts import SafetyCheckRequest, SafetyFinding
from rag_common.errors import PayloadTooLarge

from . import redaction
from .policy import Policy
from .ports import Detectors, InjectionClassifier
from .schemas import CheckRequest, CheckVerdict

__all__ = ["CheckResult", "Policy", "check"]

Action = Literal["allow", "flag", "redact", "block"]
_PRECEDENCE: dict[Action, int] = {"allow": 0, "flag": 0, "redact": 1, "block": 2}


@dataclass(frozen=True)
class CheckResult:
    check: str
    action: Action
    findings: list[SafetyFinding]

    @property
    def reason(self) -> str:
        hits = ", ".join(dict.fromkeys(describe(finding) for finding in self.findings))
        return f"{self.check} check matched {hits} -> {self.action}"


def describe(finding: SafetyFinding) -> str:
    if finding.label.startswith("classifier:"):
        return f"{finding.label} (score {finding.score:.2f})"
    return finding.label


def ensure_within_limit(text: str, policy: Policy) -> None:
    if len(text) > policy.max_text_chars:
        raise PayloadTooLarge(
            f"The text has {len(text)} characters; the safety check accepts at most {policy.max_text_chars}."
        )


async def check(
    request: CheckRequest | SafetyCheckRequest, *, detectors: Detectors, policy: Policy
) -> CheckVerdict:
    ensure_within_limit(request.text, policy)
    if not request.text.strip():
        return CheckVerdict(verdict="allow", text=request.text, policy=policy.name)
    system_prompt = request.system_prompt if isinstance(request, CheckRequest) else None
    results = await asyncio.gather(
        _check_pii(request, detectors=detectors, policy=policy),
        _check_injection(request, detectors=detectors, policy=policy),
        _check_moderation(request, detectors=detectors, policy=policy),
        _check_leak(request, system_prompt, detectors=detectors, policy=policy),
    )
    found = [r for r in results if r.findings]
    numbered = request.direction == "input" and policy.pii_placeholders == "numbered"
    return await _verdict(request.text, found, detectors=detectors, policy=policy, numbered=numbered)


async def _verdict(
    text: str, results: list[CheckResult], *, detectors: Detectors, policy: Policy, numbered: bool
) -> CheckVerdict:
    actions: list[Action] = ["allow", *(r.action for r in results)]
    verdict = max(actions, key=_PRECEDENCE.__getitem__)
    mapping: dict[str, str] | None = None
    if verdict == "redact":
        pii = [finding for r in results if r.action == "redact" for finding in r.findings]
        if numbered:
            text, values = redaction.pseudonymise(text, pii)
            mapping = values if policy.return_mapping else None
        else:
            text = await run_in_threadpool(detectors.pii.redact, text, pii)
    return CheckVerdict(
        verdict="allow" if verdict == "flag" else verdict,
        text=text,
        findings=[finding for r in results for finding in r.findings],
        reasons=[r.reason for r in results],
        policy=policy.name,
        flagged=[r.check for r in results if r.action == "flag"],
        mapping=mapping,
    )


async def _check_pii(
    request: SafetyCheckRequest | CheckRequest, *, detectors: Detectors, policy: Policy
) -> CheckResult:
    if request.direction not in policy.pii_directions:
        return CheckResult("PII", policy.pii_action, [])
    findings = await run_in_threadpool(detectors.pii.analyze, request.text)
    return CheckResult("PII", policy.pii_action, [f for f in findings if f.score >= policy.pii_threshold])


async def _check_injection(
    request: SafetyCheckRequest | CheckRequest, *, detectors: Detectors, policy: Policy
) -> CheckResult:
    if request.direction not in policy.injection_directions:
        return CheckResult("prompt injection", policy.injection_action, [])
    checks = [run_in_threadpool(detectors.injection_rules.detect, request.text)]
    if detectors.injection_classifier is not None:
        checks.append(_classify(detectors.injection_classifier, request.text, policy.injection_threshold))
    hits = await asyncio.gather(*checks)
    return CheckResult("prompt injection", policy.injection_action, [f for group in hits for f in group])


async def _classify(classifier: InjectionClassifier, text: str, threshold: float) -> list[SafetyFinding]:
    score = await run_in_threadpool(classifier.score, text)
    return classifier_findings(classifier, score, threshold)


def classifier_findings(
    classifier: InjectionClassifier, score: float, threshold: float
) -> list[SafetyFinding]:
    if score < threshold:
        return []
    return [
        SafetyFinding(kind="prompt_injection", label=f"classifier:{classifier.name}", score=round(score, 4))
    ]


async def _check_moderation(
    request: SafetyCheckRequest | CheckRequest, *, detectors: Detectors, policy: Policy
) -> CheckResult:
    if not policy.moderation_enabled or request.direction not in policy.moderation_directions:
        return CheckResult("moderation", policy.moderation_action, [])
    findings = await run_in_threadpool(detectors.moderation.detect, request.text)
    return CheckResult(
        "moderation",
        policy.moderation_action,
        [f for f in findings if f.score >= policy.moderation_threshold],
    )


async def _check_leak(
    request: SafetyCheckRequest | CheckRequest,
    system_prompt: str | None,
    *,
    detectors: Detectors,
    policy: Policy,
) -> CheckResult:
    if detectors.leak is None or request.direction not in policy.leak_directions:
        return CheckResult("system prompt leak", policy.leak_action, [])
    findings = await run_in_threadpool(
        detectors.leak.detect, request.text, system_prompt=system_prompt, min_words=policy.leak_min_words
    )
    return CheckResult("system prompt leak", policy.leak_action, findings)
