from __future__ import annotations

from fastapi import APIRouter

from . import grounding as grounding_service
from . import passages as passages_service
from . import service as safety_service
from .deps import DetectorsDep, PoliciesDep, SettingsDep
from .policy import policy_view
from .schemas import (
    CheckRequest,
    CheckVerdict,
    GroundingRequest,
    GroundingResponse,
    PassagesRequest,
    PassagesVerdict,
    PolicyView,
)

router = APIRouter(prefix="/v1", tags=["safety"])


@router.post("/check", response_model=CheckVerdict)
async def check_text(body: CheckRequest, detectors: DetectorsDep, policies: PoliciesDep) -> CheckVerdict:
    """Allow, redact or block a user question (`input`) or a generated answer (`output`)."""
    policy = policies.resolve(policy=body.policy, tenant=body.tenant)
    return await safety_service.check(body, detectors=detectors, policy=policy)


@router.post("/check/passages", response_model=PassagesVerdict)
async def check_passages(
    body: PassagesRequest, detectors: DetectorsDep, policies: PoliciesDep, settings: SettingsDep
) -> PassagesVerdict:
    """Per retrieved passage: allow, or block it as an indirect prompt injection."""
    policy = policies.resolve(policy=body.policy, tenant=body.tenant)
    return await passages_service.check_passages(
        body, detectors=detectors, policy=policy, max_items=settings.passages_max_items
    )


@router.post("/grounding", response_model=GroundingResponse)
async def grounding(
    body: GroundingRequest, detectors: DetectorsDep, settings: SettingsDep
) -> GroundingResponse:
    """How well each answer sentence is supported by (similar to) some passage."""
    return await grounding_service.score(
        body,
        embedder=detectors.embedder,
        threshold=settings.grounding_threshold,
        max_chars=settings.grounding_max_chars,
    )


@router.get("/policies/{name}", response_model=PolicyView)
async def get_policy(name: str, policies: PoliciesDep) -> PolicyView:
    """A policy's actions and thresholds, and `fail_open` for callers that cannot reach this service."""
    return policy_view(policies.get(name))
