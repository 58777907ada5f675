from __future__ import annotations

from fastapi import APIRouter

from rag_common.contracts import SafetyCheckRequest, SafetyVerdict

from . import service as safety_service
from .deps import DetectorsDep, PolicyDep

router = APIRouter(prefix="/v1", tags=["safety"])


@router.post("/check", response_model=SafetyVerdict)
async def check_text(body: SafetyCheckRequest, detectors: DetectorsDep, policy: PolicyDep) -> SafetyVerdict:
    """Allow, redact or block a user question (`input`) or a generated answer (`output`)."""
    return await safety_service.check(body, detectors=detectors, policy=policy)
