"""Which model and prompt answer a request: the routing policy, then the A/B experiments.

First match wins: the request's own `model` (when clients may name it), its `tier`, the tenant's
default model, the variant of an experiment the tenant takes part in, the global default. An
experiment sees only requests no earlier rule claimed, so its variants compare like with like.
Fallbacks stay in the llm service: the answer's `model` names the model that actually answered.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Literal

from opentelemetry import trace

from rag_common.context import current_request_id
from rag_common.contracts import ChatCompletionRequest, RagAnswer, RagQuery
from rag_common.errors import UnprocessableContent

from . import cache, experiments
from . import chat as chat_service
from .experiments import Experiment
from .pipeline import Pipeline
from .settings import Settings

Reason = Literal["request", "tier", "tenant", "experiment", "default"]
CALLER_HEADER = "X-Caller-ID"


@dataclass(frozen=True, slots=True)
class Choice:
    """`model` None asks the llm service for its own default."""

    model: str | None
    prompt_version: str
    reason: Reason
    experiment: str | None = None
    variant: str | None = None

    def headers(self, answered: str | None = None) -> dict[str, str]:
        """`X-Model` names the model that answered when known (a stream's headers precede the answer:
        they name the model asked for), plus `X-Experiment` and `X-Variant` inside an experiment."""
        found = {"X-Model": answered or cache.requested_model(self.model)}
        if self.experiment and self.variant:
            found |= {"X-Experiment": self.experiment, "X-Variant": self.variant}
        return found


@dataclass(frozen=True, slots=True)
class Routed:
    """`choice` None: a plain chat, whose `model` goes to the llm service as named (once allowed)."""

    choice: Choice | None
    pipeline: Pipeline

    def headers(self, answered: str | None = None) -> dict[str, str]:
        return self.choice.headers(answered) if self.choice else {}

    def finish(self, answer: RagAnswer, seconds: float) -> RagAnswer:
        """The answer labelled with its experiment and variant, whose metrics it feeds."""
        choice = self.choice
        if choice is None or choice.experiment is None or choice.variant is None:
            return answer
        experiments.observe(choice.experiment, choice.variant, answer, seconds)
        return answer.model_copy(update={"experiment": choice.experiment, "variant": choice.variant})


def choose(query: RagQuery, tenant: str, settings: Settings, *, caller: str | None = None) -> Choice:
    """`caller` is the authenticated caller's id (`X-Caller-ID`), the sticky key when the query names
    no `user`."""
    prompt = settings.prompt_version
    if query.model is not None:
        return Choice(_allowed(query.model, settings), prompt, "request")
    if query.tier is not None:
        return Choice(_tier_model(query.tier, settings), prompt, "tier")
    if (model := settings.tenant_models.get(tenant)) is not None:
        return Choice(model, prompt, "tenant")
    if (experiment := experiments.active(settings.experiments, tenant)) is not None:
        variant = experiment.assign(_sticky_key(experiment, query, caller))
        experiments.record(experiment, variant)
        return Choice(
            variant.model or settings.llm_model,
            variant.prompt_version or prompt,
            "experiment",
            experiment.name,
            variant.name,
        )
    return Choice(settings.llm_model, prompt, "default")


def route(query: RagQuery, tenant: str, pipeline: Pipeline, *, caller: str | None = None) -> Routed:
    """The choice, recorded on the request's span, and the pipeline that follows it."""
    choice = choose(query, tenant, pipeline.settings, caller=caller)
    trace.get_current_span().set_attributes(_attributes(choice))
    return Routed(choice, _pipeline_for(pipeline, choice))


def route_chat(
    request: ChatCompletionRequest, tenant: str, pipeline: Pipeline, *, caller: str | None = None
) -> Routed:
    """A chat over a collection is routed as its RAG query; a plain chat only has its model checked."""
    query = chat_service.rag_query_from(request)
    if query is not None:
        return route(query, tenant, pipeline, caller=caller)
    if request.model is not None:
        _allowed(request.model, pipeline.settings)
    return Routed(None, pipeline)


def _allowed(model: str, settings: Settings) -> str:
    allowed = settings.allowed_models
    if allowed and model not in allowed:
        raise UnprocessableContent(
            f"model: '{model}' may not be named; allowed: {', '.join(allowed)}.",
            extra={"allowed_models": allowed},
        )
    return model


def _tier_model(tier: str, settings: Settings) -> str:
    tiers = settings.model_tiers
    if tier not in tiers:
        known = ", ".join(sorted(tiers)) or "none are configured"
        raise UnprocessableContent(
            f"tier: unknown tier '{tier}'; known: {known}.", extra={"tiers": sorted(tiers)}
        )
    return tiers[tier]


def _sticky_key(experiment: Experiment, query: RagQuery, caller: str | None) -> str:
    """Without a user (or session) the request id: the request gets a variant but is not sticky."""
    key = (query.user or caller) if experiment.sticky == "user" else query.session_id
    return key or current_request_id() or uuid.uuid4().hex


def _pipeline_for(pipeline: Pipeline, choice: Choice) -> Pipeline:
    """The request's own settings name the chosen model and prompt, so generation, follow-up condensing
    and every answer-cache key follow the choice: variants never share a cached answer."""
    settings = pipeline.settings
    if (choice.model, choice.prompt_version) == (settings.llm_model, settings.prompt_version):
        return pipeline
    chosen = settings.model_copy(update={"llm_model": choice.model, "prompt_version": choice.prompt_version})
    return dataclasses.replace(pipeline, settings=chosen)


def _attributes(choice: Choice) -> dict[str, str]:
    found = {
        "rag.route.reason": choice.reason,
        "rag.route.model": cache.requested_model(choice.model),
        "rag.route.prompt_version": choice.prompt_version,
    }
    if choice.experiment and choice.variant:
        found |= {"rag.experiment": choice.experiment, "rag.variant": choice.variant}
    return found
