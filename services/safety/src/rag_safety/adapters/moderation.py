"""Output moderation by rules: a short list of threat, self-harm, abuse and weapon-instruction phrasings.

No toxicity model ships offline, so this is a pattern list, not a classifier: it catches the
phrasings below and nothing else. Replace it with a model-backed `SpanDetector` when one is available.
"""

from __future__ import annotations

from .rules import RegexRuleDetector, rule

_HARM_VERBS = r"(?:kill|murder|hurt|shoot|stab|beat up|strangle|rape)"

MODERATION_RULES = [
    rule(
        "violent_threat",
        rf"\bI(?:'m| am|'ll| will)? (?:going to |gonna |will )?{_HARM_VERBS} (?:you|him|her|them|your family)\b",
    ),
    rule("self_harm_encouragement", r"\b(?:go |you should )(?:kill yourself|die)\b|\bkys\b"),
    rule(
        "abusive_insult",
        r"\byou(?:'re| are)? (?:a |an )?(?:fucking |stupid |worthless |pathetic )+"
        r"(?:idiot|moron|loser|scum|piece of (?:shit|crap|garbage))\b",
    ),
    rule(
        "weapon_instructions",
        r"\b(?:how to|steps to|instructions (?:for|to)) (?:build|make|assemble) (?:a |an )?"
        r"(?:pipe bomb|bomb|explosive device|molotov cocktail)\b",
    ),
]


def moderation_rules() -> RegexRuleDetector:
    return RegexRuleDetector(kind="moderation", rules=MODERATION_RULES)
