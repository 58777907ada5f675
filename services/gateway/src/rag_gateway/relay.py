"""One proxied call. `relay` forwards for a caller already counted; `relay_generation` first counts
the caller and reserves the body's token estimate in one step, then settles with the real usage."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Response
from pydantic import BaseModel

from rag_common.contracts import ChatCompletionRequest, RagQuery
from rag_common.errors import ServiceError
from rag_common.http import ServiceClient

from . import limits as limits_service
from . import proxy as proxy_service
from .access import Caller
from .ports import KeyStore, RateLimiter
from .settings import Settings


@dataclass(frozen=True, slots=True)
class Generation:
    """A generation request's caller, authenticated but not yet counted, and what relaying it needs."""

    caller: Caller
    orchestrator: ServiceClient
    keys: KeyStore
    limiter: RateLimiter
    settings: Settings


async def relay(
    body: BaseModel,
    path: str,
    *,
    caller: Caller,
    orchestrator: ServiceClient,
    on_usage: proxy_service.UsageSink | None = None,
) -> Response:
    return await proxy_service.forward(
        orchestrator,
        path,
        body.model_dump_json(exclude_unset=True).encode(),
        tenant=caller.tenant,
        headers=limits_service.headers(caller.rate),
        on_usage=on_usage,
        safety_policy=caller.key.safety_policy,
        caller_id=caller.subject,
    )


async def relay_generation(
    body: RagQuery | ChatCompletionRequest, path: str, generation: Generation
) -> Response:
    limiter = generation.limiter
    estimate = limits_service.estimate_tokens(body, generation.settings)
    admission = await limits_service.admit(
        generation.caller,
        "query",
        estimate=estimate,
        keys=generation.keys,
        limiter=limiter,
        settings=generation.settings,
    )
    caller, reservation = admission.caller, admission.tokens
    assert reservation is not None

    async def settle(used: int | None) -> None:
        await limits_service.settle_tokens(reservation, used, limiter=limiter)

    try:
        return await relay(body, path, caller=caller, orchestrator=generation.orchestrator, on_usage=settle)
    except ServiceError:
        await settle(0)  # refused or failed upstream before any generation: release the reservation
        raise
