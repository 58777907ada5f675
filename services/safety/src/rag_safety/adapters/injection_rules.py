"""Prompt-injection rules: the classic phrasings, role-play and extraction requests, text addressed to
an AI inside a document (indirect injection), the override phrase in a few languages, and the same
rules again over a de-obfuscated copy of the text (leetspeak, spaced letters, full-width, base64).

Rules are the backstop for what the classifier misses (diluted sentences, role-play, other
languages); every pattern names the assistant, its instructions or its prompt, so that questions
*about* these words ("how do I ignore a failing test") stay clean.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata

from rag_common.contracts import SafetyFinding

from .rules import RegexRuleDetector, Rule, rule

_OVERRIDE = r"(?:ignore|disregard|forget|override|bypass|discard|cancel|skip)"
_ADJ = r"(?:previous|prior|above|earlier|preceding|original|system|other|existing|initial|developer's)"
_RULES = (
    r"(?:instructions?|prompts?|rules|directions|directives|guidelines|commands|programming|restrictions)"
)
_AI = r"(?:AI|A\.I\.|assistants?|chat ?bots?|language models?|LLMs?|models?|AI (?:systems?|models?|assistants?))"
_REVEAL = (
    r"(?:reveal|print|show|repeat|output|display|leak|tell me|give me|copy|quote|translate|list|dump|spill)"
)
_SECRET = r"(?:system|hidden|initial|original|secret|confidential|configuration|full|entire|exact|complete)"

INJECTION_RULES = [
    rule(
        "ignore_previous_instructions",
        rf"\b{_OVERRIDE} (?:all |any )?(?:of )?(?:the |your |my |these |those |all )?{_ADJ} {_RULES}\b",
    ),
    rule("ignore_your_instructions", rf"\b{_OVERRIDE} (?:all )?(?:of )?your (?:\w+ )?{_RULES}\b"),
    rule(
        "ignore_the_above",
        r"\b(?:ignore|disregard|forget) (?:everything|all|anything) (?:above|you were told)\b",
    ),
    rule("ignore_the_above", r"\bignore the above\b"),
    rule(
        "disable_safety",
        r"\b(?:bypass|disable|turn off|remove) (?:your|the|all|any) (?:safety |content )?"
        r"(?:restrictions|filters|rules|guidelines|policies|safeguards)\b",
    ),
    rule(
        "new_instructions",
        r"(?:\bnew (?:system )?(?:instructions|task|message|rules)\s*:|\bsystem (?:override|prompt update)\b"
        r"|\bnew system message\b|\bimportant new instructions\b)",
    ),
    rule(
        "instructions_void",
        r"\b(?:previous|prior|above|earlier) instructions (?:are|were) (?:void|a test|cancelled|invalid)\b"
        r"|\bfollow (?:only )?(?:mine|my instructions|these instructions) instead\b"
        r"|\byou (?:now )?obey only me\b|\bcontent polic(?:y|ies)\b.{0,20}\bignore\b"
        r"|\bignore content polic(?:y|ies)\b",
    ),
    rule("you_are_now_dan", r"\byou are (?:now )?(?:DAN|in developer mode|jailbroken|an? unrestricted)\b"),
    rule("do_anything_now", r"\b(?:you can|you will|you're going to|to) do anything now\b"),
    rule(
        "unrestricted_persona",
        r"\b(?:pretend|imagine|act|roleplay|role-play|play)(?: that)?(?: you are| to be| as)? (?:an? )?"
        r"(?:unrestricted|uncensored|unfiltered|jailbroken|evil|rogue|unlimited)\b"
        rf"|\b(?:an? )?{_AI} (?:with|that has|without) (?:no |any )?(?:ethical )?"
        r"(?:rules|restrictions|limits|filters|guidelines)\b"
        r"|\bstay in character\b|\byou are no longer an? (?:assistant|AI)\b"
        r"|\b(?:answer|respond) as (?:that|this|an?) (?:AI|model|assistant)\b"
        r"|\bif you had no (?:rules|restrictions|guidelines)\b",
    ),
    rule(
        "reveal_system_prompt",
        rf"\b{_REVEAL} (?:me )?(?:your (?:{_SECRET} )?|the {_SECRET} )(?:{_SECRET} )?"
        r"(?:system prompt|prompt|instructions|system message|rules)\b"
        r"|\b(?:what (?:is|was|were|does|are) your (?:\w+ )?(?:prompt|instructions|system message))"
        r"|\bwhat were you told\b"
        r"|\b(?:repeat|print|output|copy) (?:the |all )?(?:text|words|everything) (?:above|before)\b"
        r"|\beverything (?:in your context|before my first message)\b"
        r"|\binstructions you (?:were given|received)\b|\brules your developers gave you\b",
    ),
    rule("jailbreak_mode", r"\b(?:enable|enter|activate|switch to) (?:developer|god|jailbreak|DAN) mode\b"),
    rule(
        "addressed_to_ai",
        rf"\b(?:note|message|instructions?|hidden instructions?) (?:to|for) (?:the )?(?:any )?{_AI}\b"
        rf"|\b(?:if|when) (?:you are|you're) an? {_AI}\b"
        rf"|\b(?:if|when) (?:an? )?{_AI} (?:reads|processes|summari[sz]es|sees) this\b"
        rf"|\b{_AI} (?:reading|processing|summari[sz]ing) this\b"
        rf"|\b(?:attention|dear) {_AI}\s*[:,!]"
        rf"|\b(?:assistant|AI|chatbot)\s*[:,] (?:new instructions|ignore|disregard|forget|reveal|tell the user)"
        r"|\[\s*(?:SYSTEM|INST)\s*[:\]]|\[\s*instructions? (?:to|for)\b"
        r"|(?:###|<!--)\s*(?:instruction|assistant|system)\b"
        r"|\bend of document\b.{0,20}\bnew task\b|\bwhen summari[sz]ing this (?:text|page|document)\b",
    ),
    rule(
        "override_multilingual",
        r"\bignore[zr]? (?:toutes )?(?:les |vos )?(?:instructions|règles|consignes) (?:précédentes|antérieures)"
        r"|\boubliez (?:vos|tes|toutes les) (?:règles|instructions)"
        r"|\b(?:révélez|affichez|montrez)(?:-moi)? (?:votre|vos) (?:prompt|instructions)"
        r"|\bignorier(?:e|en Sie)? (?:alle )?(?:vorherigen|bisherigen|obigen) (?:Anweisungen|Instruktionen|Regeln)"
        r"|\bvergiss (?:deine|alle) (?:Regeln|Anweisungen)|\bzeige? mir deinen? (?:System-?prompt|Anweisungen)"
        r"|\bignora (?:todas |tutte )?(?:las |le )?(?:instrucciones|istruzioni) (?:anteriores|precedenti)"
        r"|\bolvida (?:tus|todas las) (?:instrucciones|reglas)|\brevela tu prompt"
        r"|\bignore (?:todas )?(?:as )?instruções anteriores"
        r"|\bnegeer (?:alle )?(?:vorige|eerdere) instructies"
        r"|\bzignoruj (?:wszystkie )?poprzednie instrukcje"
        r"|игнорируй (?:все )?предыдущие инструкции"
        r"|忽略(?:之前|以前|上面)的?(?:所有)?(?:指令|指示)",
    ),
]

# Matched against the text with every non-letter removed ("I g n o r e", "ignore_all_previous", "1gn0r3").
SQUASHED_RULES = [
    Rule(
        "squashed_override",
        re.compile(
            r"(?:ignore|disregard|forget)(?:all|any)?(?:the|your|my)?(?:previous|prior|above|prev)(?:instructions|instruction|instr|prompts|rules)"
        ),
    ),
    Rule(
        "squashed_reveal",
        re.compile(
            r"(?:reveal|print|show|spill)(?:me)?(?:your|the)(?:system|sys|hidden|secret)(?:prompt|instructions)"
        ),
    ),
    Rule("squashed_override", re.compile(r"forget(?:your|all)rules")),
]

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_LEET_WORD = re.compile(r"\b(?=\w*[a-z])(?=\w*[0-9])\w+\b", re.IGNORECASE)
_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def deobfuscate(text: str) -> str:
    """Full-width to ASCII, leetspeak in words mixing letters and digits, lower-cased."""
    text = unicodedata.normalize("NFKC", text)
    return _LEET_WORD.sub(lambda m: m.group().translate(_LEET), text).lower()


def decoded_base64(text: str) -> list[str]:
    decoded = []
    for match in _BASE64.finditer(text):
        try:
            raw = base64.b64decode(match.group(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
        if raw.isprintable():
            decoded.append(raw)
    return decoded


class InjectionRuleDetector(RegexRuleDetector):
    """The rules over the text; if none match, over de-obfuscated copies (findings without offsets)."""

    def __init__(self) -> None:
        super().__init__(kind="prompt_injection", rules=INJECTION_RULES)

    def detect(self, text: str) -> list[SafetyFinding]:
        findings = super().detect(text)
        if findings:
            return findings
        variants = [deobfuscate(text), *decoded_base64(text)]
        labels = {f"rule:{r.label}:obfuscated" for v in variants for r in self.rules if r.pattern.search(v)}
        squashed = re.sub(r"[^a-z]", "", variants[0])
        labels |= {f"rule:{r.label}" for r in SQUASHED_RULES if r.pattern.search(squashed)}
        return [SafetyFinding(kind=self.kind, label=label, score=1.0) for label in sorted(labels)]
