"""Request and response models beyond `rag_common.contracts`, owned by this service until shared.

`CheckRequest` is a superset of `SafetyCheckRequest` and `CheckVerdict` of `SafetyVerdict`: a caller
that sends and parses the shared models keeps working. New finding labels reuse the shared kinds
(a system-prompt leak is a `moderation` finding labelled `rule:system_prompt_leak`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag_common.contracts import SafetyFinding, SafetyVerdict

from .settings import CheckAction, Direction, PiiAction, Placeholders

Name = Annotated[str, Field(min_length=1, max_length=128)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicySelector(Strict):
    policy: Name | None = Field(default=None, description="A policy name; wins over `tenant`.")
    tenant: Name | None = Field(default=None, description="Mapped to a policy by SAFETY_TENANT_POLICIES.")


class CheckRequest(PolicySelector):
    text: str
    direction: Direction
    system_prompt: str | None = Field(
        default=None, description="The prompt the answer must not quote (output direction)."
    )


class CheckVerdict(SafetyVerdict):
    policy: str = Field(description="The policy that decided.")
    flagged: list[str] = Field(
        default_factory=list, description="Checks whose action is flag and that found something."
    )
    mapping: dict[str, str] | None = Field(
        default=None,
        repr=False,
        description="Placeholder -> original value; only on input checks with numbered placeholders and "
        "return_mapping (a reversible policy). Never stored or logged.",
    )


class PassagesRequest(PolicySelector):
    passages: list[str] = Field(min_length=1)


class PassageVerdict(BaseModel):
    index: int
    verdict: Literal["allow", "block"]
    score: float | None = Field(description="Classifier injection probability; null without classifier.")
    findings: list[SafetyFinding] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)


class PassagesVerdict(BaseModel):
    policy: str
    results: list[PassageVerdict]
    blocked: list[int] = Field(description="Indexes of the passages to drop.")


class GroundingRequest(Strict):
    answer: str
    passages: list[str] = Field(min_length=1)
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0, description="Default: the setting.")


class SentenceScore(BaseModel):
    text: str
    score: float = Field(description="Highest cosine similarity to any passage.")
    passage: int = Field(description="Index of that passage.")


class GroundingResponse(BaseModel):
    score: float = Field(description="Mean of the sentence scores; 0 for an answer without sentences.")
    grounded: bool
    threshold: float
    sentences: list[SentenceScore]


class CheckView(BaseModel):
    action: PiiAction | CheckAction
    directions: list[Direction]
    threshold: float | None = None
    min_words: int | None = None


class PolicyView(BaseModel):
    name: str
    fail_open: bool
    pii_placeholders: Placeholders
    return_mapping: bool
    pii_reversible: bool = Field(description="Numbered placeholders and the mapping, on input checks.")
    checks: dict[str, CheckView]
