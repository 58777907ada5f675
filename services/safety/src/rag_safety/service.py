"""The safety policy: run the checks that apply to a direction, then combine their actions.

Each check that finds something contributes its configured action; the verdict is the strongest
of them, block > redact > allow. Only PII can redact; the text is redacted only when the verdict is
redact (a blocked text is returned unchanged and must not be used downstream).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from starlette.concurrency import run_in_threadpool

from rag_common.contracts import SafetyCheckRequest, SafetyFinding, SafetyVerdict
from rag_common.errors import PayloadTooLarge

from .ports import Detectors, InjectionClassifier
from .settings import CheckAction, Direction, PiiAction, Settings

Action = Literal["allow", "redact", "block"]
_PRECEDENCE: dict[Action, int] = {"allow": 0, "redact": 1, "block": 2}


@dataclass(frozen=True)
class Policy:
    max_text_chars: int
    pii_action: PiiAction
    pii_directions: frozenset[Direction]
    injection_action: CheckAction
    injection_directions: frozenset[Direction]
    injection_threshold: float
    moderation_enabled: bool
    moderation_action: CheckAction
    moderation_directions: frozenset[Direction]

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            max_text_chars=settings.max_text_chars,
            pii_action=settings.pii_action,
            pii_directions=frozenset(settings.pii_directions),
            injection_action=settings.injection_action,
            injection_directions=frozenset(settings.injection_directions),
            injection_threshold=settings.injection_threshold,
            moderation_enabled=settings.moderation_enabled,
            moderation_action=settings.moderation_action,
            moderation_directions=frozenset(settings.moderation_directions),
        )


@dataclass(frozen=True)
class CheckResult:
    check: str
    action: Action
    findings: list[SafetyFinding]

    @property
    def reason(self) -> str:
        hits = ", ".join(dict.fromkeys(_describe(finding) for finding in self.findings))
        return f"{self.check} check matched {hits} -> {self.action}"


def _describe(finding: SafetyFinding) -> str:
    if finding.label.startswith("classifier:"):
        return f"{finding.label} (score {finding.score:.2f})"
    return finding.label


async def check(request: SafetyCheckRequest, *, detectors: Detectors, policy: Policy) -> SafetyVerdict:
    if len(request.text) > policy.max_text_chars:
        raise PayloadTooLarge(
            f"The text has {len(request.text)} characters; the safety check accepts at most "
            f"{policy.max_text_chars}."
        )
    if not request.text.strip():
        return SafetyVerdict(verdict="allow", text=request.text)
    results = await asyncio.gather(
        _check_pii(request, detectors=detectors, policy=policy),
        _check_injection(request, detectors=detectors, policy=policy),
        _check_moderation(request, detectors=detectors, policy=policy),
    )
    return await _verdict(request.text, [r for r in results if r.findings], detectors=detectors)


async def _verdict(text: str, results: list[CheckResult], *, detectors: Detectors) -> SafetyVerdict:
    actions: list[Action] = ["allow", *(r.action for r in results)]
    verdict = max(actions, key=_PRECEDENCE.__getitem__)
    if verdict == "redact":
        pii = [finding for r in results if r.action == "redact" for finding in r.findings]
        text = await run_in_threadpool(detectors.pii.redact, text, pii)
    return SafetyVerdict(
        verdict=verdict,
        text=text,
        findings=[finding for r in results for finding in r.findings],
        reasons=[r.reason for r in results],
    )


async def _check_pii(request: SafetyCheckRequest, *, detectors: Detectors, policy: Policy) -> CheckResult:
    if request.direction not in policy.pii_directions:
        return CheckResult("PII", policy.pii_action, [])
    return CheckResult("PII", policy.pii_action, await run_in_threadpool(detectors.pii.analyze, request.text))


async def _check_injection(
    request: SafetyCheckRequest, *, detectors: Detectors, policy: Policy
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
    if score < threshold:
        return []
    return [
        SafetyFinding(kind="prompt_injection", label=f"classifier:{classifier.name}", score=round(score, 4))
    ]


async def _check_moderation(
    request: SafetyCheckRequest, *, detectors: Detectors, policy: Policy
) -> CheckResult:
    if not policy.moderation_enabled or request.direction not in policy.moderation_directions:
        return CheckResult("moderation", policy.moderation_action, [])
    return CheckResult(
        "moderation",
        policy.moderation_action,
        await run_in_threadpool(detectors.moderation.detect, request.text),
    )
