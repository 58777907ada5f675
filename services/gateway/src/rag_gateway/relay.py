"""One proxied call: reserve tokens for generation endpoints, forward, settle with the real usage."""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel

from rag_common.contracts import ChatCompletionRequest, RagQuery
from rag_common.errors import ServiceError
from rag_common.http import ServiceClient

from . import limits as limits_service
from . import proxy as proxy_service
from .access import Caller
from .ports import RateLimiter
from .settings import Settings


async def relay(
    body: BaseModel,
    path: str,
    *,
    caller: Caller,
    orchestrator: ServiceClient,
    limiter: RateLimiter,
    settings: Settings,
) -> Response:
    payload = body.model_dump_json(exclude_unset=True).encode()
    if not isinstance(body, RagQuery | ChatCompletionRequest):
        return await proxy_service.forward(
            orchestrator,
            path,
            payload,
            tenant=caller.tenant,
            headers=limits_service.headers(caller.rate),
            safety_policy=caller.key.safety_policy,
            caller_id=caller.subject,
        )
    estimate = limits_service.estimate_tokens(body, settings)
    reservation = await limits_service.reserve_tokens(caller, estimate, limiter=limiter, settings=settings)

    async def settle(used: int | None) -> None:
        await limits_service.settle_tokens(reservation, used, limiter=limiter)

    try:
        return await proxy_service.forward(
            orchestrator,
            path,
            payload,
            tenant=caller.tenant,
            headers=limits_service.headers(caller.rate, reservation.decision),
            on_usage=settle,
            safety_policy=caller.key.safety_policy,
            caller_id=caller.subject,
        )
    except ServiceError:
        await settle(0)  # refused or failed upstream before any generation: release the reservation
        raise
