"""Presidio adapter: PII detection with a local spaCy model and `<ENTITY_TYPE>` redaction.

Nothing here touches the network: the spaCy model is named explicitly (the default `AnalyzerEngine()`
downloads `en_core_web_lg`), and e-mail validation uses tldextract's bundled public-suffix snapshot
instead of fetching the list from GitHub on first use.
"""

from __future__ import annotations

from typing import Any

import tldextract
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import NlpEngineProvider
from presidio_analyzer.predefined_recognizers import EmailRecognizer
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

from rag_common.contracts import SafetyFinding

LANGUAGE = "en"

# spaCy labels Presidio does not map to an entity; listed so they are dropped without a warning per call.
_IGNORED_NER_LABELS = [
    "ORGANIZATION",
    "CARDINAL",
    "EVENT",
    "LANGUAGE",
    "LAW",
    "MONEY",
    "ORDINAL",
    "PERCENT",
    "PRODUCT",
    "QUANTITY",
    "WORK_OF_ART",
]


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer validating domains against tldextract's bundled snapshot."""

    _extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)

    def validate_result(self, pattern_text: str) -> bool:
        return self._extractor(pattern_text).fqdn != ""


def _nlp_configuration(model_name: str) -> dict[str, Any]:
    return {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": LANGUAGE, "model_name": model_name}],
        "ner_model_configuration": {"labels_to_ignore": _IGNORED_NER_LABELS},
    }


def build_analyzer(model_name: str) -> AnalyzerEngine:
    nlp_engine = NlpEngineProvider(nlp_configuration=_nlp_configuration(model_name)).create_engine()
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    registry.load_predefined_recognizers(languages=[LANGUAGE], nlp_engine=nlp_engine)
    registry.remove_recognizer("EmailRecognizer")
    registry.add_recognizer(OfflineEmailRecognizer())
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[LANGUAGE])


MIN_PHONE_DIGITS = 7


def _too_short_for_a_phone(entity_type: str, span: str) -> bool:
    """Presidio's phone recognizer (libphonenumber) accepts short numbers like a year ("1648");
    no subscriber number we need to protect has fewer than seven digits."""
    return entity_type == "PHONE_NUMBER" and sum(c.isdigit() for c in span) < MIN_PHONE_DIGITS


class PresidioPiiDetector:
    def __init__(self, *, entities: list[str], score_threshold: float, model_name: str) -> None:
        self._analyzer = build_analyzer(model_name)
        self._anonymizer = AnonymizerEngine()  # type: ignore[no-untyped-call]  # unannotated __init__
        self._entities = entities
        self._score_threshold = score_threshold

    def analyze(self, text: str) -> list[SafetyFinding]:
        results = self._analyzer.analyze(
            text=text, language=LANGUAGE, entities=self._entities, score_threshold=self._score_threshold
        )
        return [
            SafetyFinding(kind="pii", label=r.entity_type, score=round(r.score, 4), start=r.start, end=r.end)
            for r in sorted(results, key=lambda r: (r.start, -r.end))
            if not _too_short_for_a_phone(r.entity_type, text[r.start : r.end])
        ]

    def redact(self, text: str, findings: list[SafetyFinding]) -> str:
        """Replaces each finding's span with `<LABEL>`; overlapping spans are merged by Presidio."""
        results = [
            RecognizerResult(entity_type=f.label, start=f.start, end=f.end, score=f.score)
            for f in findings
            if f.start is not None and f.end is not None
        ]
        operators = {
            r.entity_type: OperatorConfig("replace", {"new_value": f"<{r.entity_type}>"}) for r in results
        }
        return self._anonymizer.anonymize(text=text, analyzer_results=results, operators=operators).text
