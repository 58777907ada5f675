"""A/B experiments: weighted variants, assigned by a stable hash of a sticky key, with no storage.

A request's variant is where `sha256(experiment name + key)` falls among the variants' cumulative
weights, so the same user (or session) gets the same variant on every replica and after restarts,
and changing one experiment's weights reshuffles no other experiment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rag_common import metrics
from rag_common.contracts import RagAnswer

REQUESTS = metrics.counter(
    "rag_experiment_requests",
    "Requests assigned to a variant of an A/B experiment.",
    ("experiment", "variant"),
)
ANSWER_SECONDS = metrics.histogram(
    "rag_experiment_answer_duration_seconds",
    "Time to a whole (not streamed) RAG answer, per experiment variant.",
    ("experiment", "variant"),
)
COMPLETION_TOKENS = metrics.counter(
    "rag_experiment_completion_tokens",
    "Tokens generated for RAG answers, per experiment variant.",
    ("experiment", "variant"),
)
GROUNDING_SCORE = metrics.histogram(
    "rag_experiment_grounding_score",
    "Grounding score of RAG answers (0 to 1), per experiment variant.",
    ("experiment", "variant"),
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
)
_HASH_SPAN = 2**64


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    weight: float = Field(default=1.0, ge=0.0, description="Relative share of the traffic.")
    model: str | None = Field(default=None, description="Unset: the global default model.")
    prompt_version: str | None = Field(default=None, description="Unset: ORCHESTRATOR_PROMPT_VERSION.")


class Experiment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    variants: list[Variant] = Field(min_length=2)
    sticky: Literal["user", "session"] = "user"
    tenants: list[str] | None = Field(default=None, description="Unset: every tenant.")

    @model_validator(mode="after")
    def _distinct_weighted_variants(self) -> Experiment:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"experiment {self.name!r}: variant names must be distinct")
        if sum(v.weight for v in self.variants) <= 0:
            raise ValueError(f"experiment {self.name!r}: the variants' weights must add up to more than 0")
        return self

    def applies_to(self, tenant: str) -> bool:
        return self.tenants is None or tenant in self.tenants

    def assign(self, key: str) -> Variant:
        """The variant of `key`: always the same one for the same experiment name, key and weights."""
        digest = hashlib.sha256(f"{self.name}\x00{key}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / _HASH_SPAN * sum(v.weight for v in self.variants)
        cumulative = 0.0
        for variant in self.variants:
            cumulative += variant.weight
            if point < cumulative:
                return variant
        return next(v for v in reversed(self.variants) if v.weight > 0)  # rounding at the very top


def active(experiments: Sequence[Experiment], tenant: str) -> Experiment | None:
    """The first experiment that applies to the tenant; a request takes part in one at most."""
    return next((e for e in experiments if e.applies_to(tenant)), None)


def record(experiment: Experiment, variant: Variant) -> None:
    REQUESTS.labels(experiment.name, variant.name).inc()


def observe(experiment: str, variant: str, answer: RagAnswer, seconds: float) -> None:
    """What an A/B comparison needs of one answer: its time, its tokens, its grounding."""
    ANSWER_SECONDS.labels(experiment, variant).observe(seconds)
    COMPLETION_TOKENS.labels(experiment, variant).inc(answer.usage.completion_tokens)
    if answer.grounding is not None:
        GROUNDING_SCORE.labels(experiment, variant).observe(answer.grounding.score)
