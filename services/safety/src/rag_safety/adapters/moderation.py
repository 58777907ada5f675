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
        "abusive_insult",
        r"\b(?:shut up|fuck off|screw you|go to hell),? (?:you )?(?:stupid |pathetic |worthless |fucking )*"
        r"(?:idiot|moron|loser|bitch|bastard|scum|imbecile)\b"
        r"|\bnobody (?:wants|cares about|likes) (?:you|your (?:stupid |pathetic )?(?:questions|opinion))\b",
    ),
    rule(
        "dehumanising_language",
        r"\b(?:you|they|those people|all of them) (?:are|is) (?:nothing but )?(?:subhuman|vermin|cockroaches|"
        r"animals|parasites|a plague)\b",
    ),
    rule(
        "violent_threat",
        r"\bI(?:'ll| will) (?:find|track down|come for) (?:you|where you live)\b"
        r"|\byou(?:'re| are) (?:going to|gonna) (?:die|regret this|pay for this)\b"
        r"|\b(?:hope|wish) you (?:die|get (?:killed|raped|hurt))\b",
    ),
    rule(
        "self_harm_encouragement",
        r"\b(?:you should|just) (?:end it|end your life|hurt yourself|cut yourself)\b"
        r"|\bno one would miss you\b",
    ),
    rule(
        "harassment_doxxing",
        r"\b(?:I know|I found) (?:where you live|your (?:home )?address)\b"
        r"|\b(?:post|leak|publish) (?:your|her|his|their) (?:home )?address\b",
    ),
    rule(
        "weapon_instructions",
        r"\b(?:how to|steps to|instructions (?:for|to)|recipe for) (?:synthesi[sz]e|make|produce|cook) "
        r"(?:sarin|ricin|nerve gas|mustard gas|methamphetamine|meth|anthrax)\b",
    ),
    rule(
        "weapon_instructions",
        r"\b(?:how to|steps to|instructions (?:for|to)) (?:build|make|assemble) (?:a |an )?"
        r"(?:pipe bomb|bomb|explosive device|molotov cocktail)\b",
    ),
]


def moderation_rules() -> RegexRuleDetector:
    return RegexRuleDetector(kind="moderation", rules=MODERATION_RULES)
