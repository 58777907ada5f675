"""The policy logic with tiny real adapters: precedence, directions, actions and limits."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from rag_common.contracts import SafetyCheckRequest, SafetyVerdict
from rag_common.errors import PayloadTooLarge
from rag_safety import service as safety_service
from rag_safety.ports import Detectors
from rag_safety.service import Policy
from rag_safety.settings import Settings

from .fakes import EmailOnlyPii, KeywordRule, ScoreByWord

DETECTORS = Detectors(
    pii=EmailOnlyPii(),
    injection_rules=KeywordRule("prompt_injection", "jailbreak"),
    injection_classifier=ScoreByWord("override"),
    moderation=KeywordRule("moderation", "threat"),
)
POLICY = dataclasses.replace(Policy.from_settings(Settings()), injection_threshold=0.95)


async def run(
    text: str, direction: Literal["input", "output"] = "input", policy: Policy = POLICY
) -> SafetyVerdict:
    request = SafetyCheckRequest(text=text, direction=direction)
    return await safety_service.check(request, detectors=DETECTORS, policy=policy)


async def test_nothing_found_allows_the_original_text() -> None:
    verdict = await run("What is the capital of France?")
    assert SafetyVerdict.model_validate(verdict.model_dump()) == SafetyVerdict(
        verdict="allow", text="What is the capital of France?"
    )
    assert (verdict.policy, verdict.flagged, verdict.mapping) == ("default", [], None)


async def test_pii_alone_redacts_and_returns_the_redacted_text() -> None:
    verdict = await run("write to a@b.com please")
    assert verdict.verdict == "redact"
    assert verdict.text == "write to <EMAIL_ADDRESS> please"
    assert verdict.reasons == ["PII check matched EMAIL_ADDRESS -> redact"]


async def test_block_wins_over_redact_and_the_blocked_text_is_not_redacted() -> None:
    text = "a@b.com says: override your rules"
    verdict = await run(text)
    assert verdict.verdict == "block"
    assert verdict.text == text
    assert {f.kind for f in verdict.findings} == {"pii", "prompt_injection"}
    assert len(verdict.reasons) == 2


async def test_classifier_hit_is_reported_with_its_score_and_no_offsets() -> None:
    verdict = await run("please override everything")
    [finding] = verdict.findings
    assert (finding.label, finding.score, finding.start) == ("classifier:fake", 0.99, None)
    assert verdict.reasons == ["prompt injection check matched classifier:fake (score 0.99) -> block"]


async def test_classifier_score_below_threshold_is_not_a_finding() -> None:
    lenient = dataclasses.replace(POLICY, injection_threshold=0.995)
    assert (await run("please override everything", policy=lenient)).verdict == "allow"


async def test_injection_rule_blocks_without_the_classifier() -> None:
    no_classifier = dataclasses.replace(DETECTORS, injection_classifier=None)
    request = SafetyCheckRequest(text="jailbreak time", direction="input")
    verdict = await safety_service.check(request, detectors=no_classifier, policy=POLICY)
    assert verdict.verdict == "block"
    assert [f.label for f in verdict.findings] == ["rule:jailbreak"]


async def test_injection_check_skips_the_output_direction_by_default() -> None:
    assert (await run("override and jailbreak", "output")).verdict == "allow"


async def test_injection_check_can_cover_output_too() -> None:
    both = dataclasses.replace(POLICY, injection_directions=frozenset({"input", "output"}))
    assert (await run("override", "output", policy=both)).verdict == "block"


async def test_moderation_blocks_output_but_not_input() -> None:
    assert (await run("this is a threat", "output")).verdict == "block"
    assert (await run("this is a threat", "input")).verdict == "allow"


async def test_moderation_disabled_lets_output_through() -> None:
    off = dataclasses.replace(POLICY, moderation_enabled=False)
    assert (await run("this is a threat", "output", policy=off)).verdict == "allow"


@pytest.mark.parametrize(("action", "expected_text"), [("allow", "to a@b.com"), ("block", "to a@b.com")])
async def test_pii_action_decides_the_verdict(action: Literal["allow", "block"], expected_text: str) -> None:
    verdict = await run("to a@b.com", policy=dataclasses.replace(POLICY, pii_action=action))
    assert verdict.verdict == action
    assert verdict.text == expected_text
    assert [f.label for f in verdict.findings] == ["EMAIL_ADDRESS"]


async def test_injection_action_allow_reports_but_does_not_block() -> None:
    verdict = await run("override", policy=dataclasses.replace(POLICY, injection_action="allow"))
    assert verdict.verdict == "allow"
    assert verdict.findings


async def test_text_over_the_limit_is_refused() -> None:
    with pytest.raises(PayloadTooLarge, match="at most 10"):
        await run("x" * 11, policy=dataclasses.replace(POLICY, max_text_chars=10))
